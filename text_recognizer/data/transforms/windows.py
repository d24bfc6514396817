"""A line longer than the network's input, cut into windows it reads at its training height.

Shrinking a long line to the input's width would shrink its writing too (a 2,400 x 100 line
into 640 x 48 leaves writing 27 px high where training saw 48). The line network cannot read a
wider input instead: its decoder writes at most `max_output_length` tokens and has learnt no
positions past them, nor cross-attention to columns past the input's width. So the stem scales
the line to the height alone and the line is cut here, each cut in the widest gap of paper in
the second half of a window (else at its least inked column), and every window is read as a
training line is. Their readings are joined with a space where the cut gap is as wide as a word
gap, else with nothing (`text_recognizer.inference.recognizer`).
"""

from __future__ import annotations

import numpy as np

from text_recognizer.data.transforms.ink import ink_mask, paper_level

WORD_GAP = 6
"""A gap of paper at least a sixth of the line's height (8 px at 48) is a space between words:
inter-word gaps of the held-out fonts are 8 px or more in three cases of four, gaps inside
words 7 px or less in 95 of 100."""
MARGIN = 12
"""Each window keeps up to a twelfth of the height (4 px at 48) of its gap's paper on either
side, as training lines have 2 to 4 px of paper before their first letter."""


def windows(pixels: np.ndarray, width: int) -> tuple[list[np.ndarray], list[str]]:
    """uint8 (h, W) dark-on-light -> windows (h, `width`) from left to right, padded with the
    line's paper, and what joins the readings of each two in a row (" " or ""). A line whose
    ink fits `width` is one window, itself."""
    height, total = pixels.shape
    if total <= width:
        return [pixels], []
    ink = ink_mask(pixels).sum(axis=0)
    inked = np.flatnonzero(ink)
    end = int(inked[-1]) + 1 if inked.size else 0
    if end <= width:
        return [pixels[:, :width]], []
    margin = max(1, height // MARGIN)
    spans, joins, start = [], [], 0
    while end - start > width:
        gap_start, gap_end = _widest_gap(ink, start + width // 2, start + width - margin)
        keep = min(margin, (gap_end - gap_start) // 2)
        spans.append((start, gap_start + keep))
        joins.append(" " if gap_end - gap_start >= height / WORD_GAP else "")
        start = gap_end - keep
    spans.append((start, end))
    paper = paper_level(pixels)
    return [_padded(pixels[:, a:b], width, paper) for a, b in spans], joins


def _widest_gap(ink: np.ndarray, low: int, high: int) -> tuple[int, int]:
    """The run of columns without ink, [start, end), with the most columns in [low, high), whole
    (each window then keeps a training line's margin of it); with none, the least inked column
    there as a run of no width, where a cut splits the least writing."""
    blank = np.concatenate(([False], ink[low:high] == 0, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(blank))
    if not edges.size:
        column = low + int(np.argmin(ink[low:high]))
        return column, column
    starts, ends = edges[::2] + low, edges[1::2] + low
    longest = int(np.argmax(ends - starts))
    before, after = np.flatnonzero(ink[: starts[longest]]), np.flatnonzero(ink[ends[longest] :])
    start = int(before[-1]) + 1 if before.size else 0
    return start, int(ends[longest]) + (int(after[0]) if after.size else 0)


def _padded(pixels: np.ndarray, width: int, paper: int) -> np.ndarray:
    canvas = np.full((pixels.shape[0], width), paper, dtype=np.uint8)
    canvas[:, : pixels.shape[1]] = pixels
    return canvas
