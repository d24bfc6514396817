"""Draw a line of text in a font so that it varies the way one writer differs from a font, and
from the next writer.

Convention for every image in the repo: grayscale uint8, dark ink on light paper (as scanned), the
line left-aligned and the rest of the fixed width filled with paper. Transforms invert this for the
network (ink -> 1, paper and padding -> about 0).

Each glyph is drawn at its own size, baseline shift and gap, in a slant that changes from word
to word; the line is then bent, its strokes thinned or
thickened, cut from the page with uneven margins and bits of the neighbouring lines, and printed
in ink that fades and skips on textured paper, as a scanner sees it. Every kind of variation can
be switched off (`Augmentation.kinds`), which is how each one is ablated.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from text_recognizer.data.synthetic.fonts import Font
from text_recognizer.data.transforms.ink import DRAWN_INK

RENDER_SIZE = 40  # px per em while drawing; the line is resized to its final height afterwards
# The kinds of variation beyond the font, each switchable for ablation. The last four are what
# real writers and scanners have and fonts lack: a thin pen pressed unevenly, a baseline that
# drifts over the line, ascenders and descenders cut by the line's crop, white or grey scans
# seen through a scanner's blur and JPEG.
KINDS = ("glyph", "slant", "stroke", "ink", "paper", "margins", "pen", "drift", "crop", "scan")


@dataclass(frozen=True)
class Augmentation:
    """How far each kind of variation may go; `strength` scales all of them (0 = clean text)."""

    strength: float = 1.0
    kinds: frozenset[str] = field(default_factory=lambda: frozenset(KINDS))
    # The line as a whole.
    max_shear: float = 0.35
    max_rotation_deg: float = 1.5
    max_letter_spacing: float = 0.06  # fraction of the em
    max_word_spacing: float = 0.5  # extra fraction of a space
    max_baseline_wobble: float = 0.06  # fraction of the em
    max_elastic_px: float = 2.5
    max_width_scale: float = 0.2
    max_blur: float = 0.8
    max_noise: float = 10.0
    # glyph: per-glyph spread (standard deviations).
    glyph_scale: float = 0.03
    glyph_baseline: float = 0.02  # fraction of the em
    glyph_spacing: float = 0.03  # fraction of the em
    # slant: per-word change of the line's shear.
    word_slant: float = 0.1
    # stroke: the pen, as grey erosion (thicker) or dilation (thinner) at drawing size.
    max_stroke_px: int = 3
    # ink: how much of the darkness may fade along the line, and how often the pen skips.
    max_fade: float = 0.4
    skip_probability: float = 0.3
    # paper: low-frequency unevenness and grain, in grey levels; scan contrast (gamma).
    max_paper_unevenness: float = 20.0
    max_gamma_change: float = 0.4
    # margins: extra room around the ink (fraction of the em) and neighbouring-line bleed.
    max_margin: float = 0.3
    bleed_probability: float = 0.35
    # pen: strokes thinned by up to this many pixels at drawing size, the thinning varying along
    # the line as a pen's pressure does.
    max_pen_thinning_px: int = 5
    # drift: the baseline rises or falls by up to this fraction of the em over the line.
    max_drift: float = 0.25
    # crop: how often, and how much of the line's height, a tight crop cuts off at top or bottom.
    crop_probability: float = 0.35
    max_crop: float = 0.12
    # scan: how often the paper is clean white; the scanner's blur (px at the final height) and
    # JPEG quality.
    white_probability: float = 0.5
    max_scan_blur: float = 1.0
    jpeg_quality: tuple[int, int] = (25, 90)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(
                f"unknown augmentation {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
            )

    def on(self, kind: str) -> bool:
        return kind in self.kinds and self.strength > 0


@lru_cache(maxsize=4096)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


class _Faces:
    """The font at any size, with one random instance of its variation axes per line."""

    def __init__(self, font: Font, rng: np.random.Generator) -> None:
        self.path = str(font.path)
        self.axes: list[float] | None = None
        try:
            axes = _truetype(self.path, RENDER_SIZE).get_variation_axes()
        except OSError:  # not a variable font
            return
        self.axes = [float(rng.uniform(a["minimum"] or 0, a["maximum"] or 0)) for a in axes]
        self.variable: dict[int, ImageFont.FreeTypeFont] = {}

    def __call__(self, size: int = RENDER_SIZE) -> ImageFont.FreeTypeFont:
        if self.axes is None:
            return _truetype(self.path, size)
        if size not in self.variable:
            face = ImageFont.truetype(self.path, size)
            face.set_variation_by_axes(self.axes)
            self.variable[size] = face
        return self.variable[size]


def _words(text: str) -> list[tuple[int, str]]:
    """(start index, word) for each run of non-space characters."""
    out, start = [], 0
    for word in text.split(" "):
        if word:
            out.append((start, word))
        start += len(word) + 1
    return out


def _draw(text: str, faces: _Faces, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Word by word, glyph by glyph: kerned advances plus spacing jitter and baseline wobble,
    each glyph at its own size, height and gap, each word at its own slant."""
    s = aug.strength
    face = faces()
    letter_spacing = rng.uniform(-0.5, 1.0) * aug.max_letter_spacing * s * RENDER_SIZE
    word_spacing = rng.uniform(-0.3, 1.0) * aug.max_word_spacing * s * face.getlength(" ")
    wobble = aug.max_baseline_wobble * s * RENDER_SIZE
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(8, 30)
    line_shear = rng.uniform(-1, 1) * aug.max_shear * s
    glyph, slant = aug.on("glyph"), aug.on("slant")
    # Kerned advance of each character at the drawing size (pairs carry the kerning).
    advances = [
        face.getlength(text[i : i + 2]) - face.getlength(text[i + 1]) for i in range(len(text) - 1)
    ] + [face.getlength(text[-1])]
    baseline = 2.5 * RENDER_SIZE
    pieces: list[tuple[np.ndarray, int]] = []
    x, end = 2.0 * RENDER_SIZE, 0
    for start, word in _words(text):
        for space in range(end, start):  # the spaces before the word
            x += advances[space] + letter_spacing + word_spacing
        left = int(x) - 2 * RENDER_SIZE
        width = int(sum(advances[start : start + len(word)]) * 1.4) + 4 * RENDER_SIZE
        canvas = Image.new("L", (width, 4 * RENDER_SIZE), 255)
        draw = ImageDraw.Draw(canvas)
        for i, char in enumerate(word, start):
            scale, lift, gap = 1.0, 0.0, 0.0
            if glyph:
                scale = float(np.clip(1 + rng.normal(0, aug.glyph_scale * s), 0.92, 1.08))
                lift = rng.normal(0, aug.glyph_baseline * s) * RENDER_SIZE
                gap = rng.normal(0, aug.glyph_spacing * s) * RENDER_SIZE
            y = baseline + wobble * (np.sin(phase + i * 2 * np.pi / period) + rng.normal(0, 0.3))
            size = round(RENDER_SIZE * scale)
            draw.text((x - left, y - lift), char, font=faces(size), fill=0, anchor="ls")
            x += advances[i] * size / RENDER_SIZE + letter_spacing + gap
        end = start + len(word)
        shear = line_shear + (rng.normal(0, aug.word_slant * s) if slant else 0.0)
        pieces.append((_slant(canvas, shear, baseline), left))
    line = np.full((4 * RENDER_SIZE, int(x) + 3 * RENDER_SIZE), 255.0, dtype=np.float32)
    for pixels, left in pieces:
        region = line[:, left : left + pixels.shape[1]]
        np.minimum(region, pixels[:, : region.shape[1]], out=region)
    return line


def _slant(word: Image.Image, shear: float, baseline: float) -> np.ndarray:
    """Shear a word about its baseline: ascenders lean right for shear > 0. Only the ink's box
    (plus the room the shear needs) is transformed; the rest of the canvas stays paper."""
    pixels = np.asarray(word, dtype=np.float32)
    box = _ink_box(pixels)
    if shear == 0 or box is None:
        return pixels
    top, bottom, left, right = box
    room = int(np.ceil(abs(shear) * max(baseline - top, bottom - baseline))) + 1
    left, right = max(left - room, 0), min(right + room, pixels.shape[1])
    region = word.crop((left, top, right, bottom)).transform(
        (right - left, bottom - top),
        Image.Transform.AFFINE,
        (1, shear, -shear * (baseline - top), 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
        fillcolor=255,
    )
    out = np.full_like(pixels, 255.0)
    out[top:bottom, left:right] = np.asarray(region, dtype=np.float32)
    return out


def _rotate(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    angle = rng.uniform(-1, 1) * aug.max_rotation_deg * aug.strength
    image = Image.fromarray(pixels).rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255.0
    )
    return np.asarray(image, dtype=np.float32)


def _elastic(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Smooth random displacement: strokes bend a little, as a hand's do."""
    amplitude = aug.max_elastic_px * aug.strength
    if amplitude <= 0:
        return pixels
    h, w = pixels.shape
    grid = (3, max(2, w // (2 * RENDER_SIZE)))
    dy, dx = (_smooth_field(rng, grid, (h, w)) * amplitude for _ in range(2))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return ndimage.map_coordinates(pixels, (ys + dy, xs + dx), order=1, mode="nearest")


def _smooth_field(
    rng: np.random.Generator, grid: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Standard-normal noise on a coarse `grid`, interpolated smoothly up to `shape`."""
    coarse = rng.normal(0, 1, grid).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize(shape[::-1], Image.Resampling.BICUBIC)
    return np.asarray(image)


def _stroke(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Thicker or thinner strokes, as another pen draws them; thinning that would erase most of
    a light font is not applied."""
    size = int(rng.integers(0, aug.max_stroke_px + 1))
    if size < 2 or rng.random() < 0.3:
        return pixels
    if rng.random() < 0.5:
        return ndimage.grey_erosion(pixels, size=(size, size))
    thinner = ndimage.grey_dilation(pixels, size=(size, size))
    ink = (pixels < DRAWN_INK).sum()
    return thinner if (thinner < DRAWN_INK).sum() >= 0.5 * ink else pixels


def _drift(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """A baseline that rises or falls smoothly over the line (one slow wave, no more), as a
    writer's does on unruled paper."""
    h, w = pixels.shape
    amplitude = rng.uniform(-1, 1) * aug.max_drift * aug.strength * RENDER_SIZE
    xs = np.linspace(0, 1, w, dtype=np.float32)
    phase = rng.uniform(0, np.pi)
    dy = amplitude * (np.sin(phase + xs * rng.uniform(0.5, 1.5) * np.pi) - np.sin(phase))
    pad = int(np.ceil(abs(amplitude) * 2)) + 1
    padded = np.pad(pixels, ((pad, pad), (0, 0)), constant_values=255.0)
    ys, grid_x = np.mgrid[0 : h + 2 * pad, 0:w].astype(np.float32)
    return ndimage.map_coordinates(padded, (ys - dy[None, :], grid_x), order=1, mode="nearest")


def _pen(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """A thin pen pressed unevenly: the strokes thinned, by an amount that changes smoothly
    along the line; thinning that would erase most of a light font is not applied."""
    size = int(rng.integers(2, max(3, aug.max_pen_thinning_px + 1)))
    thin = ndimage.grey_dilation(pixels, size=(size, size))
    ink = (pixels < DRAWN_INK).sum()
    if (thin < DRAWN_INK).sum() < 0.35 * ink:
        return pixels
    along = _smooth_field(rng, (1, max(2, pixels.shape[1] // 60)), pixels.shape)
    pressure = np.clip(0.5 + 0.5 * along, 0, 1)
    return pressure * pixels + (1 - pressure) * thin


def _crop(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray | None:
    """A tight line crop: the tops of tall letters or the tails of descenders cut off."""
    h = pixels.shape[0]
    cut = [
        int(rng.uniform(0, aug.max_crop * aug.strength) * h)
        if rng.random() < aug.crop_probability
        else 0
        for _ in range(2)
    ]
    out = pixels[cut[0] : h - cut[1]]
    return out if (out < DRAWN_INK).any() else None


MAX_SQUEEZE = 0.75  # narrowest a line may be squeezed to fit the width, relative to its own


def _ink_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    ink = pixels < DRAWN_INK
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _crop_to_ink(pixels: np.ndarray, pad: int) -> np.ndarray | None:
    box = _ink_box(pixels)
    if box is None:
        return None
    top, bottom, left, right = box
    return pixels[max(top - pad, 0) : bottom + pad, max(left - pad, 0) : right + pad]


def _cut(pixels: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray | None:
    """The line as a scan's line crop: uneven margins, and with some chance the descenders of the
    line above and the ascenders of the line below (here: the line's own, shifted)."""
    if not aug.on("margins"):
        return _crop_to_ink(pixels, int(RENDER_SIZE * 0.08))
    box = _ink_box(pixels)
    if box is None:
        return None
    top, bottom, left, right = box
    line = pixels[top:bottom, left:right]
    margin = aug.max_margin * aug.strength * RENDER_SIZE
    t, b, lft, rgt = (int(RENDER_SIZE * 0.05 + rng.uniform(0, margin)) for _ in range(4))
    out = np.full((line.shape[0] + t + b, line.shape[1] + lft + rgt), 255.0, dtype=np.float32)
    out[t : t + line.shape[0], lft : lft + line.shape[1]] = line
    depth = max(1, line.shape[0] // 4)
    if rng.random() < aug.bleed_probability * aug.strength:  # the line above's descenders
        strip = np.roll(line[-depth:], int(rng.integers(line.shape[1])), axis=1)
        rows = min(strip.shape[0], t)
        width = min(strip.shape[1], out.shape[1])
        np.minimum(out[:rows, :width], strip[-rows:, :width], out=out[:rows, :width])
    if rng.random() < aug.bleed_probability * aug.strength:  # the line below's ascenders
        strip = np.roll(line[:depth], int(rng.integers(line.shape[1])), axis=1)
        rows = min(strip.shape[0], b)
        width = min(strip.shape[1], out.shape[1])
        below = out[out.shape[0] - rows :, :width]
        np.minimum(below, strip[:rows, :width], out=below)
    return out


def _print(line: np.ndarray, rng: np.random.Generator, aug: Augmentation, width: int) -> np.ndarray:
    """The drawn line (255 paper, 0 ink) on a page of `width`: ink and paper levels, fading and
    skipping ink, uneven paper, scan contrast and noise."""
    s = aug.strength
    height, line_width = line.shape
    darkness = np.zeros((height, width), dtype=np.float32)
    darkness[:, :line_width] = 1 - line / 255.0
    if aug.on("ink"):
        fade = rng.uniform(0, aug.max_fade * s)
        along = _smooth_field(rng, (1, max(2, width // 48)), (height, width))
        darkness *= 1 - fade * np.clip(0.5 + 0.5 * along, 0, 1)
        if rng.random() < aug.skip_probability * s:
            spots = _smooth_field(rng, (max(2, height // 6), max(2, width // 6)), (height, width))
            darkness *= np.where(spots > rng.uniform(1.6, 2.2), 0.15, 1.0)
    white = aug.on("scan") and rng.random() < aug.white_probability
    paper = rng.uniform(245, 255) if white else rng.uniform(255 - 60 * s, 255)
    ink_level = rng.uniform(0, 90 * s)
    page = paper - (paper - ink_level) * darkness
    if aug.on("paper"):
        unevenness = rng.uniform(0, aug.max_paper_unevenness * s)
        page -= unevenness * np.clip(0.5 + 0.3 * _smooth_field(rng, (2, 3), page.shape), 0, 1)
        gamma = np.exp(rng.uniform(-1, 1) * aug.max_gamma_change * s)
        page = 255.0 * (page.clip(0, 255) / 255.0) ** gamma
    page += rng.normal(0, rng.uniform(0, aug.max_noise * s), page.shape)
    page = page.clip(0, 255).round().astype(np.uint8)
    return _scan(page, rng, aug) if aug.on("scan") else page


def _scan(page: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """The page as a scanner saves it: its optics' blur, then JPEG's blocks and ringing."""
    image = Image.fromarray(page)
    blur = rng.uniform(0, aug.max_scan_blur * aug.strength)
    if blur > 0.2:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(*aug.jpeg_quality)))
    return np.asarray(Image.open(buffer).convert("L"))


def render_line(
    text: str,
    font: Font,
    rng: np.random.Generator,
    height: int,
    width: int,
    aug: Augmentation | None = None,
) -> np.ndarray | None:
    """`text` in `font` as a (height, width) uint8 image, or None if it cannot fit the width or
    nothing of it is visible (the caller samples other text).

    A line slightly too wide is squeezed horizontally (down to `MAX_SQUEEZE`), as cramped
    handwriting is; a longer one is refused so the caller can sample shorter text.
    """
    aug = aug or Augmentation()
    s = aug.strength
    # Crop before turning and bending (most of the canvas is empty), then cut the bent line
    # from its page.
    margin = int(np.ceil(3 * aug.max_elastic_px * s)) + 4
    cropped = _crop_to_ink(_draw(text, _Faces(font, rng), rng, aug), margin)
    if cropped is None:  # nothing visible (a lone hairline comma in a light script)
        return None
    cropped = _rotate(cropped, rng, aug)
    pixels = _elastic(cropped, rng, aug)
    if aug.on("drift"):
        pixels = _drift(pixels, rng, aug)
    if aug.on("stroke"):
        pixels = _stroke(pixels, rng, aug)
    if aug.on("pen"):
        pixels = _pen(pixels, rng, aug)
    cut = _cut(pixels, rng, aug)
    if cut is not None and aug.on("crop"):
        cut = _crop(cut, rng, aug)
    if cut is None:
        return None
    line = Image.fromarray(cut.clip(0, 255).astype(np.uint8))
    scale = height / line.height * (1 + rng.uniform(-1, 1) * aug.max_width_scale * s)
    natural_width = max(1, round(line.width * scale))
    if natural_width * MAX_SQUEEZE > width:
        return None
    line_width = min(width, natural_width)
    line = line.resize((line_width, height), Image.Resampling.LANCZOS)
    blur = rng.uniform(0, aug.max_blur * s)
    if blur > 0.2:
        line = line.filter(ImageFilter.GaussianBlur(blur))
    return _print(np.asarray(line, dtype=np.float32), rng, aug, width)
