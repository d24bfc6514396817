"""The model a server reads with, and the description `/v1/model` gives of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from text_recognizer.decode import search_name, searched
from text_recognizer.inference.models import load_recognizer, use_default_lm
from text_recognizer.inference.models.manifest import MANIFEST
from text_recognizer.inference.models.references import resolve
from text_recognizer.inference.recognizer import Recognizer, TextRecognizer

KINDS = {"height": "line", "shrink": "page"}
"""What a model reads, by its stem's resize rule."""


@dataclass(frozen=True)
class Model:
    recognizer: Recognizer
    info: dict[str, Any]

    @property
    def default_beam(self) -> int:
        """The beam of a request that names none: the width `predict` reads with."""
        options = searched(self.recognizer.beam)
        return options.width if options else 1

    @property
    def kind(self) -> str:
        return KINDS[self.recognizer.transform.stem.resize]


def load_model(
    reference: str | Path,
    device: str = "cpu",
    max_length: int | None = None,
    decoder: str | None = None,
) -> Model:
    """The model `reference` names, loaded as `predict` loads it, read with `decoder`. None
    serves a checkpoint with a CTC head through that head alone: on the default line reader's
    held-out test it reads about ten times faster than the attention decoder for about 0.01
    more CER (benchmarks/results/quality.json), and a reply that is not waited for is what a
    server is for. Other models read with their own decoder, and a line model's attention
    decoder with beam 5 and the default language model where it is built, as `predict` does
    (`use_default_lm`)."""
    path = resolve(reference)
    recognizer = load_recognizer(path, device, max_length, decoder=decoder)
    has_ctc = isinstance(recognizer, TextRecognizer) and recognizer.network.ctc_head is not None
    if decoder is None and has_ctc:
        recognizer.decoder = "ctc"
    use_default_lm(recognizer, None)
    return Model(recognizer, describe(recognizer, path))


def describe(recognizer: Recognizer, path: Path) -> dict[str, Any]:
    """Charset, input, the decoder, version (this package's, and the sha256 of the checkpoint
    or the export's manifest) and, for a checkpoint, where it was trained (the datamodule
    config it records)."""
    with (path / MANIFEST if path.is_dir() else path).open("rb") as f:
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
        "search": search_name(recognizer.beam),
        "trained_on": (
            recognizer.spec.datamodule if isinstance(recognizer, TextRecognizer) else None
        ),
    }
