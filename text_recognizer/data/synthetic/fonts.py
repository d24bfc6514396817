"""The handwriting fonts: which are here, what they can draw, and who trains on which.

The pool (`pool.py`, `families.csv`) names every family and its split. Whole families are held out
for validation and test, so the CER measures reading handwriting the model never saw, not
memorising a font. The default splits take every family of the pool that is present: the
packaged `fontpkg-*` ones always, the Fontsource ones once `make fonts` has fetched them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont

from text_recognizer.data.paths import data_root
from text_recognizer.data.synthetic import pool
from text_recognizer.metadata.charset import CHARSET

FONT_SUFFIXES = (".ttf", ".otf", ".woff")


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


def pool_families(split: str, root: Path | None = None) -> tuple[str, ...]:
    """The pool's families of `split` (train or heldout) that are present under `root`."""
    return tuple(
        fam.name
        for fam in pool.families()
        if fam.split == split and (fam.source == "fontpkg" or pool.fetched(fam, root) is not None)
    )


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
    """Every font file in `folder`; the family defaults to the folder's name."""
    if not folder.is_dir():
        raise FileNotFoundError(f"font folder {folder} does not exist or is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FONT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"font folder {folder} holds no {'/'.join(FONT_SUFFIXES)} files")
    return _fonts(files, family or folder.name)


def _fonts(files: Iterable[Path], family: str) -> list[Font]:
    row = pool.family(family)
    upper = row is not None and row.uppercase_only
    return [Font(p, family, missing_glyphs(p), uppercase_only=upper) for p in files]


def family_fonts(family: str, root: Path | None = None) -> list[Font]:
    """The fonts of one family: a pool row's checked files, else an installed `fontpkg-*`."""
    row = pool.family(family)
    if row is None or row.source == "fontpkg":
        folder = package_dir(family)
        if row is None:
            return load_folder(folder, family)
        return _fonts([folder / name for name, _ in row.files], family)
    files = pool.fetched(row, root)
    if files is None:
        raise FileNotFoundError(
            f"font family {family!r} is not fetched into {pool.fonts_dir(root)}: run `make fonts`"
        )
    return _fonts(files, family)


def load_fonts(families: Iterable[str], folders: Iterable[str | Path] = ()) -> list[Font]:
    """Fonts of the pool's or installed `families` plus every font in the user's `folders`."""
    return list(_load_fonts(tuple(families), tuple(str(f) for f in folders), data_root()))


@cache
def _load_fonts(
    families: tuple[str, ...], folders: tuple[str, ...], root: Path
) -> tuple[Font, ...]:
    fonts = [font for family in families for font in family_fonts(family, root)]
    for folder in folders:
        fonts += load_folder(Path(folder).expanduser())
    return tuple(fonts)
