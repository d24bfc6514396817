"""The model a server reads with, and the description `/v1/model` gives of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from text_recognizer.errors import CheckpointError
from text_recognizer.inference.recognizer import Recognizer, TextRecognizer

KINDS = {"height": "line", "shrink": "page"}
"""What a model reads, by its stem's resize rule."""


@dataclass(frozen=True)
class Model:
    recognizer: Recognizer
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        return KINDS[self.recognizer.transform.stem.resize]


def load_model(
    checkpoint: str | Path | None = None,
    exported: str | Path | None = None,
    device: str = "cpu",
    max_length: int | None = None,
    decoder: str | None = None,
) -> Model:
    """A training checkpoint (loaded as `predict` loads it), or a folder `export` wrote, read
    with `decoder` (None: the model's own, as `predict` reads it)."""
    recognizer: Recognizer
    if checkpoint is not None and exported is None:
        path = Path(checkpoint)
        recognizer = TextRecognizer.from_checkpoint(path, device, max_length, decoder=decoder)
        trained_on = recognizer.spec.datamodule
        digest_of = path
    elif exported is not None and checkpoint is None:
        from text_recognizer.inference.export import MANIFEST, ExportedRecognizer

        if device != "cpu":
            raise CheckpointError("--device", "exported models run on the CPU here")
        path = Path(exported)
        recognizer = ExportedRecognizer(path, max_length, decoder=decoder)
        trained_on = None
        digest_of = path / MANIFEST
    else:
        raise CheckpointError("model", "give a checkpoint or an exported folder, not both")
    return Model(recognizer, describe(recognizer, path, digest_of, trained_on))


def describe(
    recognizer: Recognizer, path: Path, digest_of: Path, trained_on: dict[str, Any] | None
) -> dict[str, Any]:
    """Charset, input, the decoder, version (this package's, and the model file's sha256) and
    where it was trained (the datamodule config its checkpoint records)."""
    with digest_of.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    transform = recognizer.transform.params()
    return {
        "kind": KINDS[recognizer.transform.stem.resize],
        "source": str(path),
        "sha256": sha256,
        "package_version": metadata.version("text-recognizer"),
        "charset": recognizer.tokenizer.charset,
        "input": {
            "height": transform["height"],
            "width": transform["width"],
            "resize": transform["resize"],
            "convention": "grayscale (colour is converted), dark ink on light paper, any size",
        },
        "max_length": recognizer.max_length,
        "decoder": recognizer.decoder,
        "trained_on": trained_on,
    }
