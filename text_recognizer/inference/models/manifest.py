"""`model.json`, the manifest `export` writes beside its graphs: what a runtime needs to read
with them (the tokenizer, the transform, the maximum length, the decoder, the tensor names and
the cache shapes), and the one reader that checks it.

Format 2 records the stem's resize rule in the transform, 3 the decoder, 4 the tokenizer's
normalisation and mapping (a charset built from documents), so that an export treats text as its
checkpoint does. Older manifests read as they always did: format 1 by the rule lines use, with
the attention decoder, and up to format 3 with text taken as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from text_recognizer.data.transforms import EvalTransform
from text_recognizer.decode import DECODERS
from text_recognizer.errors import CheckpointError
from text_recognizer.inference.recognizer import TextRecognizer
from text_recognizer.io import atomic_path
from text_recognizer.spec import read_tokenizer, tokenizer_entry
from text_recognizer.tokenizer import Tokenizer

MANIFEST = "model.json"
FORMAT_VERSION = 4
READS = tuple(range(1, FORMAT_VERSION + 1))
RUNTIMES = {"onnx": ".onnx", "torchscript": ".pt"}
"""The formats graphs are exported in, by the suffix of their files."""
ENCODER_IO = (["images"], ["cross_k", "cross_v"])
CTC_OUTPUT = "ctc_log_probs"
STEP_IO = (
    ["token", "position", "self_k", "self_v", "cross_k", "cross_v"],
    ["logits", "next_self_k", "next_self_v"],
)
INPUT = (
    "float32 (batch, 1, height, width): grayscale resized to height, padded with paper to width "
    "(cropped to the widest content if crop_width, and the tallest if crop_height), ink 1 and "
    "paper 0"
)


def write_manifest(
    out: Path,
    recognizer: TextRecognizer,
    runtime: str,
    quantize: str | None,
    files: dict[str, str],
    reading: dict[str, Any],
) -> Path:
    """`out/model.json` for the graphs `files` (by role) exported from `recognizer`, `reading`
    saying how to read with them (their tensors, the cache); written whole or not at all."""
    tokenizer = recognizer.tokenizer
    manifest = {
        "format_version": FORMAT_VERSION,
        "runtime": runtime,
        "quantize": quantize,
        "decoder": recognizer.decoder,
        "files": files,
        "tokenizer": {
            **tokenizer_entry(tokenizer),
            "start_index": tokenizer.start_index,
            "end_index": tokenizer.end_index,
            "pad_index": tokenizer.pad_index,
        },
        "transform": recognizer.transform.params(),
        "input": INPUT,
        "max_length": recognizer.max_length,
        **reading,
        "network": recognizer.spec.network,
    }
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return out / MANIFEST


@dataclass(frozen=True)
class Manifest:
    """What reading with exported graphs takes from a checked `model.json`."""

    files: list[Path]
    """The graphs, the encoder first, then the decoder step if there is one."""
    runtime: str
    decoder: str
    tokenizer: Tokenizer
    transform: EvalTransform
    max_length: int
    cache: dict[str, Any]
    """The self-attention cache's layers, kv_heads and dim_head (none for `--decoder ctc`)."""
    ctc_decode_weight: float


def read_manifest(folder: Path) -> Manifest:
    """The manifest of an exported folder; every problem a `CheckpointError` naming the file."""
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(folder, f"no {MANIFEST}: not a folder written by export")
    try:
        entries = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"not valid JSON ({error})") from error
    if not isinstance(entries, dict) or "format_version" not in entries:
        raise CheckpointError(path, "not an export manifest: it has no format_version")
    if (version := entries["format_version"]) not in READS:
        raise CheckpointError(
            path,
            f"export format {version!r}; this version reads formats 1 to {FORMAT_VERSION} "
            "(export the model again with it, or upgrade text-recognizer)",
        )
    if entries.get("runtime") not in RUNTIMES:
        raise CheckpointError(path, f"unknown runtime {entries.get('runtime')!r}")
    if (decoder := entries.get("decoder", "joint")) not in DECODERS:
        raise CheckpointError(path, f"unknown decoder {decoder!r}")
    files = [folder / file for file in entries["files"].values()]
    for file in files:
        if not file.is_file():
            raise CheckpointError(file, "no such file")
    return Manifest(
        files=files,
        runtime=entries["runtime"],
        decoder=decoder,
        tokenizer=read_tokenizer(entries["tokenizer"], path),
        transform=EvalTransform(**{"resize": "height", **entries["transform"]}),
        max_length=entries["max_length"],
        cache=entries.get("cache", {}),
        ctc_decode_weight=float(entries.get("ctc_decode_weight", 0.0)),
    )
