"""The one way to a model. A reference (`references`: a path, an https zip with its sha256,
`wandb:` or `hf:`) resolves to a training checkpoint (`checkpoint`, in the format
`text_recognizer.spec` defines) or a folder `export` wrote (`manifest`, `exported`), and
`load_recognizer` reads either as a `Recognizer`; `publish` is how a model travels (its card,
the checkpoint export, push)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from text_recognizer.data.lm_corpus import default_lm
from text_recognizer.decode import BeamOptions
from text_recognizer.errors import InferenceError
from text_recognizer.inference.models.checkpoint import load_checkpoint
from text_recognizer.inference.models.exported import ExportedRecognizer
from text_recognizer.inference.models.references import resolve
from text_recognizer.inference.recognizer import Recognizer, TextRecognizer
from text_recognizer.lm import LM_WEIGHT, load_token_lm


def load_recognizer(
    reference: str | Path,
    device: str | torch.device = "cpu",
    max_length: int | None = None,
    batch_size: int | None = None,
    beam: BeamOptions | None = None,
    lm: str | Path | None = None,
    quantize: str | None = None,
    decoder: str | None = None,
) -> Recognizer:
    """The model `reference` names (fetched once into the cache if remote), from its files
    alone: no Hydra, no datamodule, no data. A checkpoint reads as a `TextRecognizer`; an
    exported folder as an `ExportedRecognizer`, on the CPU and quantized at export if at all.

    `beam`: beam search (None: greedy); `lm`: an ARPA file (`text-recognizer lm train`) read
    with the model's tokenizer and fused into the search at `beam.lm_weight` (without `beam`:
    width 5 at `LM_WEIGHT`); `decoder` None: the model's own (`joint`, or what an export was
    made for)."""
    path = resolve(reference)
    recognizer: Recognizer
    if path.is_dir():
        if str(device) != "cpu":
            raise InferenceError("--device", "exported models run on the CPU here")
        if quantize:
            raise InferenceError("--quantize", "quantize at export: export --quantize int8")
        recognizer = ExportedRecognizer(path, max_length, batch_size, beam, decoder)
    else:
        network, spec = load_checkpoint(path)
        recognizer = TextRecognizer(
            network, spec, device, max_length, batch_size, beam, quantize, decoder, path
        )
    if lm is not None:
        fused = load_token_lm(lm, recognizer.tokenizer)
        recognizer.beam = replace(beam or BeamOptions(lm_weight=LM_WEIGHT), lm=fused)
    return recognizer


DEFAULT_BEAM = 5
"""The width `use_default_lm` searches with when none is asked for."""


def use_default_lm(recognizer: Recognizer, width: int | None) -> Path | None:
    """Fuse the default language model (`default_lm`, which `make generate` builds) into
    `recognizer`'s search where it is there and either a beam `width` above 1 is asked for, or
    none is (None) and the model reads lines with its attention decoder: there beam
    `DEFAULT_BEAM` with it takes a quarter off greedy's CER in under three times greedy's time a
    line (docs/decoding.md). The CTC head's prefix beam costs over four times its best path, and a
    page's beam five times its tokens, so those stay best path and greedy unless asked.
    Returns the model's path where it was fused."""
    path = default_lm()
    if width is None:
        reads_lines = recognizer.decoder == "joint" and recognizer.transform.crop_width
        width = DEFAULT_BEAM if reads_lines else 1
    if width == 1 or not path.is_file():
        return None
    lm = load_token_lm(path, recognizer.tokenizer)
    options = recognizer.beam or BeamOptions(lm_weight=LM_WEIGHT)
    recognizer.beam = replace(options, width=width, lm=lm)
    return path


def checkpoint_file(reference: str | Path, command: str) -> Path:
    """The checkpoint `reference` names (fetched if remote) for `command`, which needs the
    network itself: an exported folder is refused."""
    path = resolve(reference)
    if path.is_dir():
        raise InferenceError(reference, f"is an exported model; {command} needs a checkpoint")
    return path
