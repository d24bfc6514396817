"""Paragraphs assembled from line crops, and the check that real ones fit the page.

Paragraphs keep their scale (the stem's `shrink` rule places a crop on the page, and processing
refuses real crops too large for it; see `check_fits`). Assembled paragraphs stack runs of line
crops with the gaps and indents real ones have, so synthetic and real training paragraphs look
alike to the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from text_recognizer.data.processed import DoesNotFitError
from text_recognizer.data.transforms.ink import PAPER_GRAIN, ink_mask, paper_level

MARGIN = 8  # paper around an assembled paragraph, like the padding around a real one's lines


def narrow(crop: np.ndarray, width: int) -> np.ndarray:
    """`crop` shrunk (keeping its aspect) to at most `width` pixels wide."""
    if crop.shape[1] <= width:
        return crop
    size = (width, max(1, round(crop.shape[0] * width / crop.shape[1])))
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))


def check_fits(largest: str, size: tuple[int, int], height: int, width: int) -> None:
    """Fail naming the largest crops (`size` is their height and width) and the input size."""
    if size[0] > height or size[1] > width:
        raise DoesNotFitError(
            f"the largest {largest}, but the configured input is {height} x {width}: raise "
            "datamodule.height/width (and the network's input)"
        )


def whiten(crop: np.ndarray) -> np.ndarray:
    """Stretch the crop so its paper is white and clear the paper's grain: lines from different
    pages then share one page without visible seams."""
    pixels = crop.astype(np.float32) * (255.0 / max(paper_level(crop), 1))
    pixels[pixels > 255 - PAPER_GRAIN] = 255
    return np.clip(pixels, 0, 255).astype(np.uint8)


def trim(crop: np.ndarray) -> np.ndarray:
    """The crop cut to its ink."""
    ink = ink_mask(crop)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return crop
    return crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


@dataclass(frozen=True)
class Layout:
    """How assembled paragraphs are spread: each value drawn from these (pixels, counts)."""

    line_counts: tuple[int, ...]
    gaps: tuple[int, ...]  # ink to ink, between a line and the next; negative overlaps
    indents: tuple[int, ...]  # a line's left edge, from the paragraph's


@dataclass(frozen=True)
class Placed:
    """A line of an arranged paragraph: its crop (cut to its ink), text and top-left corner."""

    crop: np.ndarray
    text: str
    top: int
    left: int


class LinePool:
    """Line crops (whitened and cut to ink, their paper's grey kept) and texts, in source order.

    With `groups` (a writer or font per line), a page's lines all come from its first line's
    group, as a real page is in one hand.
    """

    def __init__(
        self, crops: Sequence[np.ndarray], texts: Sequence[str], groups: Sequence[int] | None = None
    ) -> None:
        if not crops or len(crops) != len(texts):
            raise ValueError(f"{len(crops)} line crops and {len(texts)} texts")
        if groups is not None and len(groups) != len(texts):
            raise ValueError(f"{len(groups)} groups for {len(texts)} lines")
        self.crops = [trim(whiten(c)) for c in crops]
        self.papers = [paper_level(c) for c in crops]
        self.texts = list(texts)
        self.groups = np.zeros(len(texts), dtype=np.int64) if groups is None else np.asarray(groups)
        self.members = {int(g): np.flatnonzero(self.groups == g) for g in np.unique(self.groups)}
        self.rank = np.empty(len(texts), dtype=np.int64)
        for members in self.members.values():
            self.rank[members] = np.arange(len(members))

    def __len__(self) -> int:
        return len(self.texts)

    def following(self, start: int, count: int) -> list[int]:
        """`count` lines of `start`'s group from `start` on, in source order, wrapping around."""
        members = self.members[int(self.groups[start])]
        return [int(members[(self.rank[start] + i) % len(members)]) for i in range(count)]

    def arrange(
        self,
        rng: np.random.Generator,
        layout: Layout,
        height: int,
        width: int,
        max_text_length: int,
    ) -> tuple[list[Placed], int]:
        """Where each line of a paragraph goes: a run of consecutive lines of one group from a
        random start, as many as the layout draws and the page and label length can hold; always
        at least one line (so every line's own text must fit `max_text_length`). Returns the
        placed lines and the first line's index."""
        count = int(rng.choice(layout.line_counts))
        start = int(rng.integers(len(self)))
        room = width - 2 * MARGIN
        placed: list[Placed] = []
        y = MARGIN
        for i, index in enumerate(self.following(start, count)):
            crop, text = narrow(self.crops[index], room), self.texts[index]
            indent = min(int(rng.choice(layout.indents)), room - crop.shape[1])
            if i:
                y += int(rng.choice(layout.gaps))
            too_long = len("\n".join([*(p.text for p in placed), text])) > max_text_length
            if placed and (y + crop.shape[0] + MARGIN > height or too_long):
                break
            placed.append(Placed(crop, text, max(y, 0), MARGIN + indent))
            y = max(y, 0) + crop.shape[0]
        return placed, start

    def draw(self, placed: Sequence[Placed], height: int, width: int, start: int) -> np.ndarray:
        """The placed lines on white paper, then given the paper of line `start`'s source (a
        scan has one paper colour)."""
        page = np.full((height, width), 255, dtype=np.uint8)
        for line in placed:
            crop = line.crop[: height - line.top]
            bottom, right = line.top + crop.shape[0], line.left + crop.shape[1]
            region = page[line.top : bottom, line.left : right]
            np.minimum(region, crop[:, : region.shape[1]], out=region)
        return (page.astype(np.float32) * (self.papers[start] / 255.0)).round().astype(np.uint8)

    def assemble(
        self,
        rng: np.random.Generator,
        layout: Layout,
        height: int,
        width: int,
        max_text_length: int,
    ) -> tuple[np.ndarray, str, int]:
        """A paragraph as `arrange` places it, drawn: the page, its text and its first line."""
        placed, start = self.arrange(rng, layout, height, width, max_text_length)
        return self.draw(placed, height, width, start), "\n".join(p.text for p in placed), start
