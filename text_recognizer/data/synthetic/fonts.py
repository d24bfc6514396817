"""The handwriting fonts: which are installed, what they can draw, and who trains on which.

Fonts come from `fontpkg-*` packages (SIL Open Font License), so `pip install` is all it takes.
Whole families are held out for validation and test, so the CER measures reading handwriting the
model never saw, not memorising a font.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont

from text_recognizer.metadata.charset import CHARSET

# Packaged families used by default, by fontpkg package name.
TRAIN_FAMILIES = (
    "caveat",
    "dancing-script",
    "delius",
    "great-vibes",
    "kalam",
    "lobster",
    "lobster-two",
    "oleo-script",
    "pacifico",
    "permanent-marker",
    "shadows-into-light",
    "yellowtail",
    "zeyada",
)
# One cursive and one print family, never seen in training.
HELDOUT_FAMILIES = ("satisfy", "indie-flower")
# Families whose lower case is drawn as small capitals: they get upper-case text only, so the
# label always matches what is drawn.
UPPERCASE_ONLY_FAMILIES = frozenset({"permanent-marker"})


@dataclass(frozen=True)
class Font:
    """One font file, the family it belongs to and the charset characters it cannot draw."""

    path: Path
    family: str
    missing: frozenset[str] = frozenset()
    uppercase_only: bool = False

    @property
    def name(self) -> str:
        return self.path.stem

    def can_draw(self, text: str) -> bool:
        return not (self.missing & set(text))


def missing_glyphs(path: Path, charset: str = CHARSET) -> frozenset[str]:
    """Charset characters the font has no glyph for (PIL would draw them as boxes)."""
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    return frozenset(c for c in charset if c != " " and ord(c) not in cmap)


def package_dir(family: str) -> Path:
    """Folder of TrueType files installed by `fontpkg-<family>`."""
    module = "fontpkg_" + family.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"font family {family!r} is not installed: pip install fontpkg-{family}"
        )
    return Path(spec.origin).parent / "files"


def load_folder(folder: Path, family: str | None = None) -> list[Font]:
    """Every .ttf/.otf in `folder`; the family defaults to the folder's name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"font folder {folder} does not exist or is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".ttf", ".otf"})
    if not files:
        raise FileNotFoundError(f"font folder {folder} holds no .ttf or .otf files")
    family = family or folder.name
    return [
        Font(p, family, missing_glyphs(p), uppercase_only=family in UPPERCASE_ONLY_FAMILIES)
        for p in files
    ]


def load_fonts(families: Iterable[str], folders: Iterable[str | Path] = ()) -> list[Font]:
    """Fonts of the packaged `families` plus every font in the user's `folders`."""
    return list(_load_fonts(tuple(families), tuple(str(f) for f in folders)))


@cache
def _load_fonts(families: tuple[str, ...], folders: tuple[str, ...]) -> tuple[Font, ...]:
    fonts = [font for family in families for font in load_folder(package_dir(family), family)]
    for folder in folders:
        fonts += load_folder(Path(folder).expanduser())
    return tuple(fonts)
