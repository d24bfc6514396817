"""A page you can look at: each line's outline drawn on the page in its region's colour, its
baseline, and its reading written just above it on a pale label, in one size for the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from text_recognizer.data.documents.record import Line, by_region

COLOURS = ((214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def overlay(page: np.ndarray, lines: Sequence[Line], readings: Mapping[str, str]) -> Image.Image:
    """The uint8 grayscale `page` in colour with `lines` and their `readings` (by line id)."""
    image = Image.fromarray(page).convert("RGB")
    draw = ImageDraw.Draw(image, "RGBA")
    if not lines:
        return image
    heights = sorted(line.box[3] - line.box[1] for line in lines)
    font = ImageFont.load_default(size=max(10, round(heights[len(heights) // 2] * 0.35)))
    for index, region in enumerate(by_region(lines)):
        colour = COLOURS[index % len(COLOURS)]
        for line in region:
            draw.polygon(line.outline, outline=colour, width=2)
            if line.baseline:
                draw.line(line.baseline, fill=(*colour, 160), width=2)
            text = readings.get(line.id, "")
            if not text:
                continue
            x0, y0 = line.box[:2]
            left, top, right, bottom = draw.textbbox((x0, y0), text, font=font, anchor="lb")
            draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=(255, 255, 224, 220))
            draw.text((x0, y0), text, font=font, fill=colour, anchor="lb")
    return image
