"""Character and word error rates of a recognizer on a datamodule's test split, with a report
directory: `report.json` (figures, every sample, the worst ones) and `predictions.png` (the
worst samples: image, target, prediction, CER)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TypedDict

from torchmetrics.functional.text import char_error_rate, word_error_rate

from text_recognizer.data.base import BaseDataModule, save_captioned_grid
from text_recognizer.decode import search_name
from text_recognizer.errors import CheckpointError, InferenceError
from text_recognizer.inference.recognizer import Recognizer
from text_recognizer.io import atomic_path
from text_recognizer.model.metrics import error_rates


class Row(TypedDict):
    index: int
    target: str
    prediction: str
    cer: float
    wer: float


def datamodule_named(name: str) -> BaseDataModule:
    """A known datamodule by its config name (`iam_lines`) or class name (`IAMLines`), with the
    defaults `make generate` builds."""
    from text_recognizer.data.registry import DATASETS

    known = DATASETS
    for key, factory in known.items():
        if name in (key, getattr(getattr(factory, "func", factory), "__name__", None)):
            return factory()
    raise InferenceError("--datamodule", f"unknown {name!r}; choose from {', '.join(known)}")


def report_folder(reference: str, checkpoint: Path, datamodule: str) -> Path:
    """Where `evaluate` writes by default: beside the checkpoint, where the model card looks
    (`publish.evaluation_of`); in the working folder for one that `reference` fetched into the
    cache or found in a folder."""
    if str(checkpoint) != reference:
        return Path(f"{checkpoint.stem}-test")
    return checkpoint.with_name(f"{checkpoint.stem}-{datamodule}-test")


def check_tokenizer(recognizer: Recognizer, datamodule: BaseDataModule, source: object) -> None:
    """Refuse a datamodule whose labels the model's tokenizer would number differently."""
    ours, theirs = recognizer.tokenizer.charset, datamodule.tokenizer.charset
    if ours == theirs:
        return
    only_ours = "".join(sorted(set(ours) - set(theirs)))
    only_theirs = "".join(sorted(set(theirs) - set(ours)))
    difference = (
        f"only in the checkpoint {only_ours!r}, only in the datamodule {only_theirs!r}"
        if only_ours or only_theirs
        else "the same characters in another order"
    )
    raise CheckpointError(
        source,
        f"tokenizer mismatch: its charset ({len(recognizer.tokenizer)} tokens) differs from "
        f"{type(datamodule).__name__}'s ({len(datamodule.tokenizer)} tokens): {difference}",
    )


def per_group(
    predictions: list[str], targets: list[str], groups: list[str]
) -> dict[str, dict[str, float]]:
    """CER and WER of each group (font family) over its own samples, worst first."""
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    table = {}
    for group, indices in members.items():
        metrics = error_rates("")
        metrics.update([predictions[i] for i in indices], [targets[i] for i in indices])
        values = {name: float(value) for name, value in metrics.compute().items()}
        table[group] = {"samples": len(indices), "cer": values["cer"], "wer": values["wer"]}
    return dict(sorted(table.items(), key=lambda item: -item[1]["cer"]))


def evaluate(
    recognizer: Recognizer,
    datamodule: BaseDataModule,
    out: Path,
    worst: int = 10,
    batch_size: int | None = None,
    source: str = "",
) -> dict[str, Any]:
    """Read every test sample, write the report into `out` and return it."""
    check_tokenizer(recognizer, datamodule, source)
    datamodule.prepare_data()
    datamodule.setup("test")
    data = datamodule.data_test
    began = time.perf_counter()
    predictions = recognizer.predict_batch(list(data.images), batch_size)
    seconds = time.perf_counter() - began
    metrics = error_rates("")
    metrics.update(predictions, data.texts)
    totals = {name: float(value) for name, value in metrics.compute().items()}
    rows = [
        Row(
            index=i,
            target=target,
            prediction=prediction,
            cer=float(char_error_rate(prediction, target)),
            wer=float(word_error_rate(prediction, target)),
        )
        for i, (target, prediction) in enumerate(zip(data.texts, predictions, strict=True))
    ]
    worst_rows = sorted(rows, key=lambda r: (-r["cer"], -r["wer"], r["index"]))[:worst]
    groups = datamodule.groups("test")
    report = {
        "checkpoint": source,
        "decoder": recognizer.decoder,
        "search": search_name(recognizer.beam),
        "datamodule": type(datamodule).__name__,
        "split": "test",
        "samples": len(rows),
        "cer": totals["cer"],
        "wer": totals["wer"],
        "seconds": round(seconds, 3),
        "per_family": per_group(predictions, data.texts, groups) if groups else {},
        "worst": worst_rows,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    captions = [
        (
            data.images[row["index"]],
            [
                f"target: {row['target']}",
                f"predicted: {row['prediction']}",
                f"CER {row['cer']:.3f}  WER {row['wer']:.3f}  (sample {row['index']})",
            ],
        )
        for row in worst_rows
    ]
    if captions:
        save_captioned_grid(out / "predictions.png", captions)
    return report
