"""Publishing: the model card `export` writes, the checkpoint format, `push` (the Hub through a
fake `HfApi` that records its calls, W&B through the real client in offline mode), and the
training run's `best.ckpt` logged as a model artifact into its offline W&B run."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
import yaml
from helpers import compose_with, run_cli
from tiny_recognizer import Tiny
from wandb_records import artifacts

from text_recognizer import cli
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.models.publish import CARD, CHECKPOINT, read_card
from text_recognizer.spec import read_checkpoint
from training.run import run


@pytest.fixture(autouse=True)
def quiet_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wandb offline, writing its settings, cache and staged files under the test's folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


def md5_b64(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def front_matter(folder: Path) -> dict[str, Any]:
    text = (folder / CARD).read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def export_checkpoint(
    checkpoint: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> None:
    argv = ["export", "--checkpoint", str(checkpoint), "--format", "checkpoint", "--out", str(out)]
    code, printed, err = run_cli(capsys, *argv, *extra, main=cli.main)
    assert code == 0, err
    assert f"wrote {out / CHECKPOINT}" in printed and f"wrote {out / CARD}" in printed


@pytest.fixture
def exported(tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The tiny model exported as a checkpoint, with its card."""
    export_checkpoint(tiny_checkpoint.checkpoint, tmp_path / "exported", capsys)
    return tmp_path / "exported"


@pytest.fixture
def evaluated(
    tiny_checkpoint: Tiny,
    tiny_lines: SyntheticLines,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> tuple[Path, Path]:
    """The tiny model evaluated (the report beside it, as `evaluate` puts it), then exported."""
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(tiny_checkpoint.checkpoint, checkpoint)
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(checkpoint), main=cli.main)
    assert code == 0, err
    export_checkpoint(checkpoint, tmp_path / "exported", capsys)
    return checkpoint, tmp_path / "exported"


def test_export_writes_a_checkpoint_and_a_card_with_the_measured_families(
    evaluated: tuple[Path, Path], tiny_checkpoint: Tiny
) -> None:
    checkpoint, out = evaluated
    report = json.loads(
        (checkpoint.parent / "best-SyntheticLines-test" / "report.json").read_text()
    )
    assert report["per_family"]
    front = front_matter(out)
    assert front["license"] == "mit" and front["library_name"] == "text-recognizer"
    values = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert values == {"cer": report["cer"], "wer": report["wer"]}
    _, spec = read_checkpoint(checkpoint)
    ours = front["text_recognizer"]
    assert ours["per_family"] == report["per_family"]
    assert ours["charset"] == spec.charset
    assert (ours["input"]["height"], ours["input"]["width"]) == (32, 640)
    assert ours["datamodule"]["_target_"].endswith("SyntheticLines")
    body = (out / CARD).read_text()
    for family, row in report["per_family"].items():
        assert f"| {family} | {row['samples']} | {row['cer']:.4f} |" in body
    assert 'load_recognizer("exported")' in body
    assert f"from `text-recognizer evaluate`, read with {report['search']}: CER" in body
    assert report["search"] == "greedy"  # no default language model was built
    # Only what inference needs: smaller than the training checkpoint, and it reads the same.
    slim = torch.load(out / CHECKPOINT, weights_only=True)
    assert "optimizer_states" not in slim
    assert (out / CHECKPOINT).stat().st_size < checkpoint.stat().st_size
    image = tiny_checkpoint.images[2]
    original = load_recognizer(checkpoint).predict(image)
    assert load_recognizer(out).predict(image) == original


def test_a_card_without_measurements_says_how_to_get_them(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    export_checkpoint(tiny_checkpoint.checkpoint, out, capsys, "--license", "cc-by-4.0")
    front = front_matter(out)
    assert front["license"] == "cc-by-4.0" and "model-index" not in front
    assert "Not measured: run `text-recognizer evaluate" in (out / CARD).read_text()


class FakeHfApi:
    calls: list[tuple[str, dict[str, Any]]]

    def __init__(self) -> None:
        self.calls = type(self).calls

    def create_repo(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs: Any) -> str:
        self.calls.append(("upload_folder", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"


def test_push_to_the_hub_creates_the_repo_and_uploads_the_folder(
    exported: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = exported
    api = type("HfApi", (FakeHfApi,), {"calls": []})
    monkeypatch.setattr(huggingface_hub, "HfApi", api)
    code, printed, err = run_cli(
        capsys, "push", "--model", str(out), "--to", "hf:someone/tiny", main=cli.main
    )
    assert code == 0, err
    assert printed == f"pushed {out} to https://huggingface.co/someone/tiny/commit/abc\n"
    (create, created), (upload, uploaded) = api.calls
    assert create == "create_repo" and created["repo_id"] == "someone/tiny"
    assert created["exist_ok"] is True
    assert upload == "upload_folder" and Path(uploaded["folder_path"]) == out
    assert uploaded["repo_id"] == "someone/tiny"


def test_push_to_wandb_logs_the_folder_as_a_model_artifact(
    exported: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = exported
    monkeypatch.chdir(tmp_path)
    code, printed, err = run_cli(
        capsys, "push", "--model", str(out), "--to", "wandb:hwr", main=cli.main
    )
    assert code == 0, err
    assert printed.startswith(f"pushed {out} to wandb:") and ":latest" in printed
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    (artifact,) = artifacts(folder)
    assert artifact.type == "model" and artifact.name == "exported"
    files = {entry.path: entry.digest for entry in artifact.manifest.contents}
    assert files == {name: md5_b64(out / name) for name in (CARD, CHECKPOINT)}
    assert json.loads(artifact.metadata)["license"] == read_card(out)["license"]


@pytest.mark.parametrize(
    ("target", "message"),
    [("s3:bucket", "unknown target"), ("hf:no-slash", "unknown target")],
)
def test_push_to_an_unknown_target_is_one_line(
    exported: Path, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    out = exported
    code, _, err = run_cli(capsys, "push", "--model", str(out), "--to", target, main=cli.main)
    assert code == 1 and err.startswith(f"error: {target}: {message}") and err.count("\n") == 1


def test_push_of_a_folder_export_did_not_write_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "push", "--model", str(tmp_path), "--to", "hf:a/b", main=cli.main
    )
    assert code == 1 and "not a folder written by `text-recognizer export`" in err


@pytest.mark.slow
def test_training_logs_the_best_checkpoint_into_the_offline_wandb_run(
    tiny_lines: SyntheticLines, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_with(
        *(f"datamodule.{k}={v}" for k, v in {"train_size": 48, "val_size": 16}.items()),
        "datamodule.test_size=16",
        "datamodule.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
        "callbacks.log_predictions=null",
        "logger=wandb",
        run_dir=run_dir,
    )
    metrics = run(cfg, run_dir)
    best = run_dir / "checkpoints" / "best.ckpt"
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    (artifact,) = artifacts(folder)
    assert artifact.type == "model" and artifact.name == f"model-{folder.name.split('-')[-1]}"
    assert set(artifact.aliases) == {"best", "latest"}
    assert {e.path: e.digest for e in artifact.manifest.contents} == {"best.ckpt": md5_b64(best)}
    logged = json.loads(artifact.metadata)
    assert logged["test/cer"] == metrics["test/cer"]
    assert logged["val/cer_best"] == metrics["val/cer_best"]
