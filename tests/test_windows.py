"""A line longer than the model's input: the stem keeps its height at inference, the line is cut
into windows at gaps of paper, and the recognizer reads the windows and joins their readings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_recognizer import TEXTS, Tiny
from torch import Tensor

from text_recognizer.data.transforms import ImageStem
from text_recognizer.data.transforms.ink import content_widths, ink_mask
from text_recognizer.data.transforms.windows import windows
from text_recognizer.decode import BeamOptions
from text_recognizer.inference import load_recognizer

PAPER, INK = 230, 20


def words(height: int, spans: list[tuple[int, int]], width: int) -> np.ndarray:
    """Paper with a block of ink over the middle half of the height at each [start, end)."""
    pixels = np.full((height, width), PAPER, dtype=np.uint8)
    for start, end in spans:
        pixels[height // 4 : 3 * height // 4, start:end] = INK
    return pixels


def test_at_inference_the_line_stem_keeps_the_height_of_a_long_line() -> None:
    long = words(100, [(0, 2400)], 2400)
    stem = ImageStem(48, 640)
    assert stem.fit(long).shape == (48, 640)  # training's rule: shrunk to the width
    fitted = stem.fit(long, any_width=True)
    assert fitted.shape == (48, 1152) and ink_mask(fitted).any(axis=1).sum() == 24
    pages = ImageStem(48, 640, "shrink")
    assert pages.fit(long, any_width=True).shape == (48, 640)  # pages are only ever shrunk


def test_a_long_line_is_cut_at_its_widest_gaps_and_every_ink_column_read_once() -> None:
    # words 100 px wide; gaps of 10 px, but 30 px after the 5th and 9th word, 3 px after the 7th
    spans, x = [], 4
    for n in range(12):
        spans.append((x, x + 100))
        x += 100 + {4: 30, 6: 3, 8: 30}.get(n, 10)
    line = words(48, spans, x + 50)
    cut, joins = windows(line, 640)
    assert [w.shape for w in cut] == [(48, 640)] * 3
    assert joins == [" ", " "]  # 30 px gaps: wider than a sixth of the height
    inked = [np.flatnonzero(ink_mask(w).any(axis=0)) for w in cut]
    # words 1-5, 6-9 (not cut at the 3 px gap), 10-12; each window keeps 4 px of its gap
    assert [(cols[0], cols[-1]) for cols in inked] == [(4, 543), (4, 426), (4, 323)]
    assert sum(ink_mask(w).sum() for w in cut) == ink_mask(line).sum()


def test_a_line_without_gaps_is_cut_where_it_has_least_ink_and_joined_without_a_space() -> None:
    line = words(48, [(0, 1000)], 1000)
    line[20:28, 450] = PAPER  # thinner ink here than in any other column of the search
    cut, joins = windows(line, 640)
    assert joins == [""] and content_widths(np.stack(cut)).tolist() == [450, 550]
    short = line[:, :640]
    assert windows(short, 640)[0][0] is short  # a line that fits is its own window


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_a_long_line_is_read_in_windows_at_the_height_training_used(
    tiny_checkpoint: Tiny, scale: float
) -> None:
    """Three lines the tiny model knows, side by side as one line three times its input's width
    (scanned larger, with `scale`): shrunk to fit, their writing would be a third of the height
    it was trained at; cut at the gaps between them, each is read as it was trained."""
    chosen = [0, 2, 4]
    line = Image.fromarray(np.concatenate([tiny_checkpoint.images[i] for i in chosen], axis=1))
    line = line.resize((round(line.width * scale), round(line.height * scale)))
    recognizer = load_recognizer(tiny_checkpoint.checkpoint)
    read = []
    decode = recognizer.decode

    def spied(images: Tensor, beam: BeamOptions | None = None) -> Tensor:
        read.append(images.shape)
        return decode(images, beam)

    recognizer.decode = spied  # type: ignore[method-assign]
    assert recognizer.predict(line) == " ".join(TEXTS[i] for i in chosen)
    assert len(read) == 1 and read[0][:3] == (3, 1, 32)  # the three windows, in one batch
    shrunk = recognizer.transform.stem.fit(line)
    assert recognizer.predict_fitted([shrunk])[0].text != " ".join(TEXTS[i] for i in chosen)


def test_a_long_lines_confidences_are_its_windows_with_each_joining_space_their_end(
    tiny_checkpoint: Tiny,
) -> None:
    """What `predict` writes into a document: a confidence for every character of the joined
    text, each joining space's being the end token's of the window before it."""
    line = np.concatenate([tiny_checkpoint.images[i] for i in (1, 3)], axis=1)
    recognizer = load_recognizer(tiny_checkpoint.checkpoint)
    (whole,) = recognizer.predict_timed([line], batch_size=1, confidences=True)
    cut, joins = windows(recognizer.fit(line), 640)
    first, second = recognizer.predict_fitted(cut, batch_size=1, confidences=True)
    assert joins == [" "] and whole.text == f"{first.text} {second.text}" == "cat 42 zebra"
    assert whole.confidences == pytest.approx(first.confidences + second.confidences)
    assert len(whole.confidences) == len(whole.text) + 1  # and the last window's end token
