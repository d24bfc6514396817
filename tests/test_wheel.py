"""The wheel works outside the repository: the configs and dataset facts the library reads are
package data, not files that only a clone has.

The wheel is built offline (no isolated build environment, no index) and installed with no
dependencies into a fresh venv that sees this interpreter's site-packages as plain paths, so the
editable install among them never runs: `text_recognizer` comes from the wheel alone.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT

from text_recognizer.data.paths import DATA_DIR_ENV

pytestmark = pytest.mark.slow

# Run by the installed wheel's interpreter: what `evaluate --datamodule` reads, and Hydra
# composing the packaged datamodule group, alone and through training's config.yaml.
CONFIGS = textwrap.dedent(
    """
    import sys
    from hydra import compose, initialize_config_dir, initialize_config_module
    from omegaconf import OmegaConf
    import text_recognizer
    from text_recognizer.data import registry
    from text_recognizer.inference.evaluate import datamodule_named

    print(text_recognizer.__file__)
    print(type(datamodule_named("iam_lines")).__name__)
    with initialize_config_module("text_recognizer.conf", version_base="1.3"):
        for name in registry.CLASSES:
            node = compose(overrides=[f"+datamodule={name}"]).datamodule
            assert OmegaConf.to_container(node, resolve=True) == registry.values(name), name
    with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=conv_transformer_paragraphs"])
    print(cfg.datamodule._target_)
    """
)


def _run(command: Sequence[str | Path], **where: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **where)
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this checkout."""
    build = tmp_path_factory.mktemp("wheel")
    # poetry-core, the build backend, comes with the dev group (`make install`).
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", build, ROOT])
    (wheel,) = build.glob("text_recognizer-*.whl")
    venv = build / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    purelib = Path(sysconfig.get_path("purelib", vars={"base": venv, "platbase": venv}))
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", wheel])
    return venv


@pytest.fixture
def elsewhere(tmp_path: Path) -> dict[str, Any]:
    """Run from a folder outside the repository, with its own data root and no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {DATA_DIR_ENV: str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    return {"cwd": tmp_path, "env": env}


def test_the_data_command_builds_from_packaged_configs_and_metadata(
    venv: Path, elsewhere: dict[str, Any], tmp_path: Path
) -> None:
    """`generate` builds each datamodule from its yaml; a real one names the archive its
    metadata.toml promises, which is missing in a new data root, and is skipped."""
    result = _run(
        [venv / "bin" / "text-recognizer-data", "generate", "iam_lines", "emnist"], **elsewhere
    )
    data = tmp_path / "data" / "downloaded"
    assert result.stdout.splitlines() == [
        f"iam_lines: skipped, iam archive {data / 'iam' / 'iamdb.zip'} is missing: "
        "run `make download && make generate`",
        f"emnist: skipped, emnist archive {data / 'emnist' / 'matlab.zip'} is missing: "
        "run `make download && make generate`",
    ]


def test_the_packaged_configs_compose_with_hydra_and_the_registry_alike(
    venv: Path, elsewhere: dict[str, Any]
) -> None:
    python = venv / "bin" / "python"
    conf = ROOT / "training" / "conf"
    package, evaluated, target = _run([python, "-c", CONFIGS, conf], **elsewhere).stdout.split()
    assert Path(package).is_relative_to(venv)
    assert evaluated == "IAMLines"
    assert target == "text_recognizer.data.iam.paragraphs.IAMParagraphs"
