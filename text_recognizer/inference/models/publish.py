"""Models that travel: `export` (the checkpoint for Python, or graphs for other runtimes), the
model card every export writes, and `push` to the Hugging Face Hub or W&B.

The card (`README.md`) opens with YAML front matter in the Hub's model-card fields (licence,
library, tags, metrics as a `model-index`) plus a `text_recognizer` block with what a reader
needs before loading: the metrics per held-out family, the data, the charset, the input size.
Metrics come from what evaluation already wrote beside the checkpoint: `evaluate`'s
`report.json` (with the per-family table), else the training run's `metrics.json`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from text_recognizer.errors import InferenceError
from text_recognizer.inference.export import export
from text_recognizer.inference.models import load_recognizer
from text_recognizer.inference.models.manifest import MANIFEST
from text_recognizer.inference.recognizer import TextRecognizer
from text_recognizer.io import atomic_path
from text_recognizer.spec import CHECKPOINT_KEY, InferenceSpec, read_checkpoint

CARD = "README.md"
CHECKPOINT = "model.ckpt"
LICENSE = "mit"  # this repository's; the weights are trained by its code
TARGETS = "hf:<user>/<repo> or wandb:[<entity>/]<project>"
_KEPT = (CHECKPOINT_KEY, "state_dict", "epoch", "global_step", "pytorch-lightning_version")


class PushError(InferenceError):
    """An upload that could not be made: `<target>: <problem>`."""


def export_model(
    checkpoint: Path,
    format: str,
    out: Path,
    quantize: str | None = None,
    decoder: str | None = None,
    license: str = LICENSE,
) -> tuple[list[Path], Path]:
    """Export `checkpoint` into `out` in `format` (`checkpoint`, or graphs that `decoder` reads
    with, `text_recognizer.inference.export`), then its card; the files written, and the card."""
    if format == "checkpoint" and decoder == "ctc":
        raise InferenceError(
            "--decoder ctc",
            "exports the encoder and CTC head as a graph: give --format onnx or torchscript (a "
            "checkpoint reads with either decoder: predict --decoder ctc)",
        )
    if format == "checkpoint":
        files, spec = _export_checkpoint(checkpoint, out)
    else:
        recognizer = load_recognizer(checkpoint, decoder=decoder)
        assert isinstance(recognizer, TextRecognizer)  # what a checkpoint loads as
        files, spec = export(recognizer, format, out, quantize), recognizer.spec
    return files, write_card(out, spec, format, evaluation_of(checkpoint), license)


def _export_checkpoint(checkpoint: Path, out: Path) -> tuple[list[Path], InferenceSpec]:
    """The checkpoint without what only resuming needs (optimizer, loops, callbacks): the
    weights and what inference reads, loadable as any checkpoint is."""
    state, spec = read_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CHECKPOINT) as tmp, tmp.open("wb") as f:
        torch.save({key: state[key] for key in _KEPT if key in state}, f)
    return [out / CHECKPOINT], spec


def evaluation_of(checkpoint: Path) -> dict[str, Any] | None:
    """What was measured of `checkpoint`: the newest `evaluate` report beside it, else its
    training run's `metrics.json` (test CER and WER, no families); None if neither exists."""
    reports = sorted(
        checkpoint.parent.glob(f"{checkpoint.stem}-*-test/report.json"),
        key=lambda p: p.stat().st_mtime,
    )
    if reports:
        report = json.loads(reports[-1].read_text())
        keep = ("datamodule", "split", "samples", "search", "cer", "wer", "per_family")
        return {key: report.get(key) for key in keep} | {"source": "`text-recognizer evaluate`"}
    run = checkpoint.parent.parent / "metrics.json"
    if checkpoint.parent.name == "checkpoints" and run.is_file():
        metrics = json.loads(run.read_text())
        if "test/cer" in metrics:
            return {
                "split": "test",
                "cer": metrics["test/cer"],
                "wer": metrics.get("test/wer"),
                "per_family": {},
                "source": "the training run's test",
            }
    return None


def write_card(
    out: Path,
    spec: InferenceSpec,
    format: str,
    measured: dict[str, Any] | None,
    license: str = LICENSE,
) -> Path:
    """`out/README.md`: front matter for the Hub and W&B, then the same facts for a reader."""
    transform = spec.transform
    datamodule = spec.datamodule or {}
    data = str(datamodule.get("_target_", "unknown")).rsplit(".", 1)[-1]
    kind = "page" if transform.get("resize") == "shrink" else "line"
    size = f"1 x {transform['height']} x {transform['width']}"
    front: dict[str, Any] = {
        "license": license,
        "library_name": "text-recognizer",
        "pipeline_tag": "image-to-text",
        "tags": ["handwritten-text-recognition", "ocr", "pytorch", format],
        "datasets": [data],
        "metrics": ["cer", "wer"],
    }
    if measured:
        split = f"{data} {measured.get('split', 'test')}"
        front["model-index"] = [
            {
                "name": out.resolve().name,
                "results": [
                    {
                        "task": {"type": "image-to-text", "name": "handwritten text recognition"},
                        "dataset": {"name": split, "type": data},
                        "metrics": [
                            {"type": name, "name": name.upper(), "value": measured[name]}
                            for name in ("cer", "wer")
                            if measured.get(name) is not None
                        ],
                    }
                ],
            }
        ]
    front["text_recognizer"] = {
        "format": format,
        "kind": kind,
        "input": {"channels": 1, **transform},
        "charset": spec.charset,
        "per_family": (measured or {}).get("per_family") or {},
        "datamodule": datamodule,
    }
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100)
    body = _card_body(out, format, kind, size, data, spec, measured, license)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CARD) as tmp:
        tmp.write_text(f"---\n{header}---\n\n{body}", encoding="utf-8")
    return out / CARD


def _card_body(
    out: Path,
    format: str,
    kind: str,
    size: str,
    data: str,
    spec: InferenceSpec,
    measured: dict[str, Any] | None,
    license: str,
) -> str:
    lines = [
        f"# {out.resolve().name}: a handwritten {kind} reader ({format})",
        "",
        "A ConvNext image encoder and a transformer decoder with a kv cache, trained with "
        "text-recognizer. It reads one "
        f"{'text line' if kind == 'line' else 'page of lines'} per image.",
        "",
        "## How to load",
        "",
        "```python",
        "from text_recognizer.inference import load_recognizer",
        "",
        "# this folder, or where it was pushed: hf:<user>/<repo>,",
        "# wandb:<entity>/<project>/<name>:<alias>, https://.../model.zip#sha256=<hex>",
        f'recognizer = load_recognizer("{out.name}")',
        'print(recognizer.predict("line.png"))',
        "```",
        "",
        f"or `text-recognizer predict --model {out.name} line.png`.",
        "",
        "## Metrics",
        "",
    ]
    if measured:
        split = measured.get("split", "test")
        samples = f" ({measured['samples']} samples)" if measured.get("samples") else ""
        search = f", read with {measured['search']}" if measured.get("search") else ""
        lines.append(
            f"On the {split} split of {data}{samples}, from {measured['source']}{search}: "
            f"CER {measured['cer']:.4f}"
            + (f", WER {measured['wer']:.4f}" if measured.get("wer") is not None else "")
            + "."
        )
        families = measured.get("per_family") or {}
        if families:
            lines += [
                "",
                "Per held-out family (worst first):",
                "",
                "| family | samples | CER | WER |",
                "| --- | ---: | ---: | ---: |",
            ]
            lines += [
                f"| {name} | {row['samples']} | {row['cer']:.4f} | {row['wer']:.4f} |"
                for name, row in families.items()
            ]
        else:
            lines += ["", "No per-family table: `text-recognizer evaluate` writes one."]
    else:
        lines.append(
            "Not measured: run `text-recognizer evaluate --checkpoint CKPT` before exporting, "
            "and the card carries its CER, WER and per-family table."
        )
    charset = spec.charset
    lines += [
        "",
        "## Data",
        "",
        f"Trained on `{data}`; its config as the checkpoint records it:",
        "",
        "```yaml",
        yaml.safe_dump(spec.datamodule or {}, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "## Input",
        "",
        f"Grayscale, dark ink on light paper, any size: resized ({spec.transform['resize']}) "
        f"and padded with paper to {size} (channels x height x width), as in validation.",
        "",
        "## Charset",
        "",
        f"{len(charset)} characters, plus the special tokens: `{charset}`",
        "",
        "## Licence",
        "",
        f"`{license}`. The offline synthetic data is rendered from fonts under the SIL Open Font "
        "License or Apache 2.0; a model trained on IAM or EMNIST is bound by their terms too.",
        "",
    ]
    return "\n".join(lines)


def read_card(folder: Path) -> dict[str, Any]:
    """The card's front matter, or {} without a card."""
    path = folder / CARD
    if not path.is_file():
        return {}
    _, _, rest = path.read_text(encoding="utf-8").partition("---\n")
    front, _, _ = rest.partition("\n---\n")
    loaded = yaml.safe_load(front)
    return loaded if isinstance(loaded, dict) else {}


def push(folder: Path, to: str) -> str:
    """Upload an exported folder; returns where it went (a URL or a model reference)."""
    if not folder.is_dir() or not (
        (folder / MANIFEST).is_file() or (folder / CHECKPOINT).is_file()
    ):
        raise InferenceError(folder, "not a folder written by `text-recognizer export`")
    scheme, _, rest = to.partition(":")
    if scheme == "hf" and re.fullmatch(r"[\w.-]+/[\w.-]+", rest):
        return _push_hf(folder, rest, to)
    if scheme == "wandb" and re.fullmatch(r"(?:[\w.-]+/)?[\w.-]+", rest):
        return _push_wandb(folder, rest)
    raise PushError(to, f"unknown target: push to {TARGETS}")


def _push_hf(folder: Path, repo: str, to: str) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo,
            folder_path=folder,
            repo_type="model",
            commit_message=f"text-recognizer push of {folder.resolve().name}",
        )
    except (HfHubHTTPError, OSError) as error:
        problem = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise PushError(to, f"{problem} (log in with `hf auth login`)") from None
    return str(commit)


def _push_wandb(folder: Path, project: str) -> str:
    import wandb

    entity, _, name = project.rpartition("/")
    artifact_name = re.sub(r"[^\w.-]", "-", folder.resolve().name)
    run = wandb.init(project=name, entity=entity or None, job_type="push-model")
    try:
        artifact = wandb.Artifact(artifact_name, type="model", metadata=read_card(folder))
        artifact.add_dir(str(folder))
        run.log_artifact(artifact, aliases=["latest"])
    finally:
        run.finish()
    return f"wandb:{run.entity}/{run.project}/{artifact_name}:latest"
