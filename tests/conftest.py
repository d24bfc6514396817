"""Every test gets its own data root; nothing touches ./data or the network."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import SINGLE, run_main, synthetic_lines

from text_recognizer.data import registry
from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.registry import DATASETS
from text_recognizer.data.synthetic.lines import SyntheticLines

if TYPE_CHECKING:
    from tiny_recognizer import Tiny

# Small enough to render in a few seconds, large enough for a batch of every split (main.py's
# overrides: `datamodule.<key>=<value>`).
TINY_LINES = {"train_size": 48, "val_size": 16, "test_size": 16}
# The tiny lines the tests read, beyond synthetic_lines.yaml's: 32 px high, as the tiny model
# (tiny_recognizer.py) reads them, in batches of 4.
TINY_LINE_DATA = {**TINY_LINES, "height": 32, "batch_size": 4}
# The registry with tiny sizes, so a whole `generate` takes seconds.
TINY_SIZES: dict[str, dict[str, Any]] = {
    "synthetic_lines": TINY_LINES,
    "synthetic_paragraphs": {
        "train_size": 5,
        "val_size": 2,
        "test_size": 2,
        "lines": synthetic_lines(**TINY_LINES),
    },
    "emnist_lines": {"train_size": 8, "val_size": 4, "test_size": 4},
    "iam_synthetic_paragraphs": {"synthetic_size": 6},
    "iam_extended_paragraphs": {"synthetic_size": 6},
}
TINY_DATASETS: dict[str, Callable[[], BaseDataModule]] = {
    name: functools.partial(DATASETS[name], **TINY_SIZES.get(name, {})) for name in DATASETS
}


@pytest.fixture(autouse=True)
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def shared_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root for the tests that only read the tiny synthetic dataset."""
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture
def tiny_lines(shared_data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyntheticLines]:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_root))
    datamodule = synthetic_lines(**TINY_LINE_DATA)
    datamodule.prepare_data()
    datamodule.setup()
    yield datamodule


@pytest.fixture(scope="session")
def reference_run(shared_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted single-process run of `SINGLE`, which resumed and DDP runs must match."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = run_main(shared_data_root, *SINGLE, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


@pytest.fixture
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "DATASETS", TINY_DATASETS)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """A tiny line reader overfit on a few rendered lines, saved as training saves it."""
    from tiny_recognizer import train

    return train(tmp_path_factory.mktemp("tiny-model") / "tiny.ckpt")
