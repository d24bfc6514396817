"""`text-recognizer-data download | generate | info` as `make download && make generate` runs
them, against a loopback server, plus the experiments that read real data."""

from pathlib import Path

import pytest
from conftest import TINY_LINES
from fake_archives import closed_port, make_emnist_zip, make_iam_zip, serve, sha256, write_metadata
from fake_documents import lines_of, write_page
from helpers import ROOT, compose_with, run_cli, run_main
from hydra.utils import instantiate
from omegaconf import OmegaConf

from text_recognizer.data import registry
from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs

CONF = ROOT / "training" / "conf"


def test_download_with_no_route_fails_in_one_line_and_leaves_nothing(
    data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, filename in (("emnist", "matlab.zip"), ("iam", "iamdb.zip")):
        write_metadata(data_root, name, f"http://127.0.0.1:{closed_port()}/{filename}", "0" * 64)
    code, _, err = run_cli(capsys, "download")
    assert code == 1
    assert err.startswith("error: cannot download http://127.0.0.1:") and err.count("\n") == 1
    assert "matlab.zip" in err and "by hand" in err
    # Only the metadata and the (empty) lock a download holds while it writes.
    left = [p for p in data_root.rglob("*") if p.is_file() and p.suffix not in (".toml", ".lock")]
    assert left == []


@pytest.mark.usefixtures("tiny_registry")
def test_generate_skips_absent_archives_but_builds_the_synthetic_sets(
    shared_data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_root))
    code, out, _ = run_cli(capsys, "generate")
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    for name in ("emnist", "emnist_lines"):
        assert lines[name].startswith("skipped, emnist archive") and "make download" in lines[name]
    for name in ("iam_lines", "iam_paragraphs", "iam_synthetic_paragraphs"):
        assert lines[name].startswith("skipped, iam archive")
    assert lines["synthetic_paragraphs"].startswith(("built", "present"))
    code, out, _ = run_cli(capsys, "generate", "synthetic_lines", "synthetic_paragraphs")
    assert code == 0 and out.count("present, skipped") == 2


@pytest.mark.usefixtures("tiny_registry")
def test_download_generate_info_end_to_end(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    iam, (emnist, _) = make_iam_zip(served / "iamdb.zip"), make_emnist_zip(served / "matlab.zip")
    with serve(served) as server:
        write_metadata(data_root, "iam", f"{server.url}/iamdb.zip", sha256(iam))
        write_metadata(data_root, "emnist", f"{server.url}/matlab.zip", sha256(emnist))
        code, out, err = run_cli(capsys, "download")
        assert code == 0, err
        assert "emnist: downloaded" in out and "iam: downloaded" in out and "brown:" in out
        code, out, _ = run_cli(capsys, "download", "iam")
        assert "iam: " in out and "present and verified, skipped" in out
        assert server.requests == ["/matlab.zip", "/iamdb.zip"]
    names = ["emnist", "emnist_lines", "iam_lines", "iam_paragraphs", "iam_synthetic_paragraphs"]
    code, out, err = run_cli(capsys, "generate", *names)
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines() if ": built " in line] == names
    code, out, _ = run_cli(capsys, "generate", *names)
    assert out.count("present, skipped") == len(names)
    # The extended paragraphs are the real and the synthetic ones: both built already.
    code, out, err = run_cli(capsys, "generate", "iam_extended_paragraphs")
    assert code == 0 and out.startswith("iam_extended_paragraphs: present, skipped"), err
    grid = tmp_path / "grid.png"
    code, out, err = run_cli(capsys, "info", "iam_extended_paragraphs", "--grid", str(grid))
    assert code == 0, err
    assert "IAMParagraphs: input (1, 576, 640)" in out and out.count("file: ") == 2
    assert grid.is_file()


def test_unknown_names_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "generate", "mnist")
    assert code == 2 and "unknown dataset mnist" in err


@pytest.mark.parametrize("name", list(registry.CLASSES))
def test_generate_builds_the_files_training_reads(name: str, tmp_path: Path) -> None:
    """Both build the datamodule from its training yaml: the same files, with nothing to sync.
    Your own documents are named on both command lines alike."""
    overrides = []
    if name in registry.OWN:
        for i in range(3):
            write_page(tmp_path / "pages", f"p{i}", lines_of(["a line"]))
        overrides = [f"datamodule.sources=[{tmp_path / 'pages'}]"]
    config = compose_with(f"datamodule={name}", *overrides, run_dir=tmp_path).datamodule
    composed = instantiate(config)
    built = registry.configured(name, overrides)()
    assert type(built) is type(composed) is registry.CLASSES[name]
    assert built.paths == composed.paths != []


@pytest.mark.parametrize("name", list(registry.CLASSES))
def test_the_registry_composes_each_yaml_as_hydra_does(name: str, tmp_path: Path) -> None:
    """Defaults lists included (`synthetic_lines@lines`, `shape/lines@_here_`)."""
    config = compose_with(f"datamodule={name}", run_dir=tmp_path).datamodule
    assert registry.values(name) == OmegaConf.to_container(config, resolve=True)


def test_the_synthetic_paragraphs_are_stacked_from_the_synthetic_lines_yaml() -> None:
    """One file states the lines: an edit there (here, an override) changes both."""
    lines = registry.configured("synthetic_lines", ["datamodule.height=40"])()
    pages = registry.configured("synthetic_paragraphs", ["datamodule.lines.height=40"])()
    assert isinstance(pages, SyntheticParagraphs) and isinstance(lines, SyntheticLines)
    assert pages.lines == lines.config and pages.lines.path() == lines.path
    assert registry.values("synthetic_paragraphs")["lines"] == registry.values("synthetic_lines")


@pytest.mark.slow
def test_synthetic_paragraphs_experiment_runs_offline(data_root: Path, tmp_path: Path) -> None:
    result = run_main(
        data_root,
        "+experiment=synthetic_paragraphs",
        "+debug=fast_dev_run",
        f"hydra.run.dir={tmp_path / 'run'}",
        *(f"datamodule.lines.{key}={value}" for key, value in TINY_LINES.items()),
        "datamodule.train_size=4",
        "datamodule.val_size=2",
        "datamodule.test_size=2",
        "datamodule.batch_size=2",
        "+model.max_output_length=32",  # an untrained decoder would otherwise run to 682 tokens
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.slow
def test_the_paragraph_experiment_without_iam_stops_in_one_line(
    data_root: Path, tmp_path: Path
) -> None:
    # The 23M-parameter paragraph network's config may not exist yet; the data check comes first.
    network = (
        []
        if (CONF / "network" / "conv_transformer_paragraphs.yaml").exists()
        else ["network=conv_transformer_paragraphs_small"]
    )
    result = run_main(
        data_root,
        "+experiment=conv_transformer_paragraphs",
        *network,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "iamdb.zip is missing" in line and "make download && make generate" in line
    assert not (data_root / "downloaded").exists()
