"""Read every line of a PAGE or ALTO file and write the readings into a copy of it: the round
trip eScriptorium and Transkribus users import back.

Each line is cut from its page exactly as the `documents` datamodule cuts it for training, and
read with its confidence (`Reading`). Reading never depends on the text a line already holds:
every line is read and written. Where there is text, the readings are also scored against it, in
the model's normalisation and mapping (a character the model cannot write counts as its error).
The copy is written whole or not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from torchmetrics.functional.text import char_error_rate

from text_recognizer.data.documents import (
    Document,
    DocumentError,
    Reading,
    read_document,
    write_readings,
)
from text_recognizer.data.documents.images import line_image, page_pixels
from text_recognizer.data.documents.record import words
from text_recognizer.inference.recognizer import Prediction, Recognizer
from text_recognizer.io import atomic_path
from text_recognizer.tokenizer import Tokenizer


@dataclass(frozen=True)
class PageReading:
    source: Path
    out: Path
    lines: int
    skipped: int
    """Lines the document has but that could not be cut from the image (see `Skipped`)."""
    cer: float | None
    """Against the text the page held, over the lines that held some; None if none did."""


def read_page(
    recognizer: Recognizer, path: Path, out: Path, batch_size: int | None = None
) -> PageReading:
    """Read the document at `path` and write it, with the readings, to `out`/<its name>."""
    target = out / path.name
    if target.resolve() == path.resolve():
        raise DocumentError(path, f"--out {out} is its own folder: the copy would overwrite it")
    document = read_document(path)
    references = labels(document, recognizer.tokenizer)
    pixels = page_pixels(path, document.image)
    crops = [line_image(pixels, line) for line in document.lines]
    predictions = recognizer.predict_timed(crops, batch_size, confidences=True)
    readings = {
        line.id: reading(prediction)
        for line, prediction in zip(document.lines, predictions, strict=True)
    }
    data = write_readings(path, readings)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    scored = [line.id for line in document.lines if line.id in references]
    cer = (
        float(char_error_rate([readings[i].text for i in scored], [references[i] for i in scored]))
        if scored
        else None
    )
    return PageReading(path, target, len(document.lines), len(document.skipped), cer)


def labels(document: Document, tokenizer: Tokenizer) -> dict[str, str]:
    """The text of each line that holds some, as the model writes its labels (its normalisation
    and mapping), by line id: what its readings are scored against."""
    found = {line.id: tokenizer.normalize(line.text or "").strip() for line in document.lines}
    return {line_id: label for line_id, label in found.items() if label}


def reading(prediction: Prediction) -> Reading:
    """The line's confidence is the geometric mean of its characters' (and the end token's)
    probabilities; each word's, of its own characters'."""
    scores = prediction.confidences
    text = prediction.text
    spans, at = [], 0
    for word in words(text):
        start = text.index(word, at)
        spans.append(scores[start : start + len(word)])
        at = start + len(word)
    return Reading(text, _mean(scores), tuple(_mean(s) for s in spans))


def _mean(scores: tuple[float, ...]) -> float:
    """Geometric mean (1.0 for nothing to judge)."""
    if not scores:
        return 1.0
    return math.exp(sum(math.log(max(s, 1e-12)) for s in scores) / len(scores))
