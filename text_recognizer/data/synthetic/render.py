"""Draw a line of text in a font so that it varies the way handwriting does.

Convention for every image in the repo: grayscale uint8, dark ink on light paper (as scanned), the
line left-aligned and the rest of the fixed width filled with paper. Transforms invert this for the
network (ink -> 1, paper and padding -> about 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from text_recognizer.data.synthetic.fonts import Font

RENDER_SIZE = 40  # px per em while drawing; the line is resized to its final height afterwards


@dataclass(frozen=True)
class Augmentation:
    """How far each kind of variation may go; `strength` scales all of them (0 = clean text)."""

    strength: float = 1.0
    max_shear: float = 0.35
    max_rotation_deg: float = 1.5
    max_letter_spacing: float = 0.06  # fraction of the em
    max_word_spacing: float = 0.5  # extra fraction of a space
    max_baseline_wobble: float = 0.06  # fraction of the em
    max_elastic_px: float = 2.5
    max_width_scale: float = 0.2
    max_blur: float = 0.8
    max_noise: float = 10.0


@lru_cache(maxsize=64)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _font(font: Font, rng: np.random.Generator) -> ImageFont.FreeTypeFont:
    face = _truetype(str(font.path), RENDER_SIZE)
    try:
        axes = face.get_variation_axes()
    except OSError:  # not a variable font
        return face
    face = ImageFont.truetype(str(font.path), RENDER_SIZE)
    face.set_variation_by_axes(
        [float(rng.uniform(a["minimum"] or 0, a["maximum"] or 0)) for a in axes]
    )
    return face


def _draw(
    text: str, face: ImageFont.FreeTypeFont, rng: np.random.Generator, aug: Augmentation
) -> Image.Image:
    """Draw character by character: kerned positions plus spacing jitter and baseline wobble."""
    s = aug.strength
    letter_spacing = rng.uniform(-0.5, 1.0) * aug.max_letter_spacing * s * RENDER_SIZE
    word_spacing = rng.uniform(-0.3, 1.0) * aug.max_word_spacing * s * face.getlength(" ")
    wobble = aug.max_baseline_wobble * s * RENDER_SIZE
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(8, 30)
    offsets, extra = [0.0], 0.0
    for i, char in enumerate(text[:-1]):
        extra += letter_spacing + (word_spacing if char == " " else 0.0)
        offsets.append(face.getlength(text[: i + 2]) - face.getlength(text[i + 1]) + extra)
    width = int(offsets[-1] + face.getlength(text[-1]) + 2 * RENDER_SIZE)
    canvas = Image.new("L", (max(width, 1), 3 * RENDER_SIZE), 255)
    draw = ImageDraw.Draw(canvas)
    stroke = int(rng.random() < 0.25 * s)
    for i, (char, x) in enumerate(zip(text, offsets, strict=True)):
        y = RENDER_SIZE + wobble * (np.sin(phase + i * 2 * np.pi / period) + rng.normal(0, 0.3))
        draw.text((RENDER_SIZE + x, y), char, font=face, fill=0, anchor="ls", stroke_width=stroke)
    return canvas


def _shear_rotate(image: Image.Image, rng: np.random.Generator, aug: Augmentation) -> Image.Image:
    shear = rng.uniform(-1, 1) * aug.max_shear * aug.strength
    angle = np.deg2rad(rng.uniform(-1, 1) * aug.max_rotation_deg * aug.strength)
    w, h = image.size
    cos, sin = np.cos(angle), np.sin(angle)
    # Inverse map output -> input about the centre: rotation then horizontal shear.
    a, b = cos, sin + shear
    d, e = -sin, cos
    cx, cy = w / 2, h / 2
    c = cx - a * cx - b * cy
    f = cy - d * cx - e * cy
    return image.transform(
        image.size,
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
        fillcolor=255,
    )


def _elastic(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Smooth random displacement: strokes bend a little, as a hand's do."""
    amplitude = aug.max_elastic_px * aug.strength
    if amplitude <= 0:
        return pixels
    h, w = pixels.shape
    grid = (3, max(2, w // (2 * RENDER_SIZE)))
    dy, dx = (
        np.asarray(
            Image.fromarray(rng.normal(0, amplitude, grid).astype(np.float32), mode="F").resize(
                (w, h), Image.Resampling.BICUBIC
            )
        )
        for _ in range(2)
    )
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ndimage.map_coordinates(pixels, (ys + dy, xs + dx), order=1, mode="nearest")


MAX_SQUEEZE = 0.75  # narrowest a line may be squeezed to fit the width, relative to its own


def _crop_to_ink(pixels: np.ndarray, pad: int) -> np.ndarray | None:
    ink = pixels < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return pixels[
        max(rows[0] - pad, 0) : rows[-1] + pad + 1, max(cols[0] - pad, 0) : cols[-1] + pad + 1
    ]


def render_line(
    text: str,
    font: Font,
    rng: np.random.Generator,
    height: int = 32,
    width: int = 640,
    aug: Augmentation | None = None,
) -> np.ndarray | None:
    """`text` in `font` as a (height, width) uint8 image, or None if it cannot fit the width.

    A line slightly too wide is squeezed horizontally (down to `MAX_SQUEEZE`), as cramped
    handwriting is; a longer one is refused so the caller can sample shorter text.
    """
    aug = aug or Augmentation()
    s = aug.strength
    image = _shear_rotate(_draw(text, _font(font, rng), rng, aug), rng, aug)
    # Crop before bending (most of the canvas is empty), then again to the bent ink.
    margin = int(np.ceil(3 * aug.max_elastic_px * s)) + 2
    pixels = _crop_to_ink(np.asarray(image, dtype=np.float32), margin)
    if pixels is None:
        raise ValueError(f"font {font.name} drew nothing for {text!r}")
    pixels = _crop_to_ink(_elastic(pixels, rng, aug), int(RENDER_SIZE * 0.08))
    if pixels is None:
        raise ValueError(f"font {font.name} drew nothing for {text!r}")
    line = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    scale = height / line.height * (1 + rng.uniform(-1, 1) * aug.max_width_scale * s)
    natural_width = max(1, round(line.width * scale))
    if natural_width * MAX_SQUEEZE > width:
        return None
    line_width = min(width, natural_width)
    line = line.resize((line_width, height), Image.Resampling.LANCZOS)
    blur = rng.uniform(0, aug.max_blur * s)
    if blur > 0.2:
        line = line.filter(ImageFilter.GaussianBlur(blur))
    canvas = np.full((height, width), 255.0, dtype=np.float32)
    canvas[:, :line_width] = np.asarray(line, dtype=np.float32)
    paper = rng.uniform(255 - 60 * s, 255)
    ink_level = rng.uniform(0, 90 * s)
    canvas = ink_level + (paper - ink_level) * canvas / 255.0
    canvas += rng.normal(0, rng.uniform(0, aug.max_noise * s), canvas.shape)
    return canvas.clip(0, 255).round().astype(np.uint8)
