"""The handwriting font pool: which families exist, where their files come from, and fetching.

`families.csv` beside this file lists every family, one row each: the 15 `fontpkg-*` families
that pip installs with the project, and the Google Fonts handwriting families that Fontsource
publishes on npm (`@fontsource/<family>@<version>`). `make fonts` packs those with one `npm pack`
call per chunk, checks each file against the sha256 in the table and places it atomically under
`<data root>/fonts/<family>/`. Without npm, or when a fetch fails, training goes on with the
families that are present, and the data digest names exactly the files used.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tqdm import tqdm

from text_recognizer.data.paths import atomic_path, data_root, exclusive
from text_recognizer.data.synthetic.npm import pack

TABLE = Path(__file__).with_name("families.csv")
SOURCES = ("fontpkg", "fontsource")
STYLES = ("cursive", "print")
SPLITS = ("train", "heldout")
LICENCES = ("OFL-1.1", "Apache-2.0")
NPM_CHUNK = 25  # packages per `npm pack` call: few calls, and a progress bar that moves


@dataclass(frozen=True)
class Family:
    """One row of the table: a handwriting family and the files (name -> sha256) it takes."""

    name: str
    source: str
    version: str
    style: str
    licence: str
    split: str
    uppercase_only: bool
    files: tuple[tuple[str, str], ...]

    @property
    def package(self) -> str:
        return f"@fontsource/{self.name}@{self.version}"


def _row(row: dict[str, str], where: str) -> Family:
    def field(name: str, allowed: Sequence[str] | None = None) -> str:
        value = (row.get(name) or "").strip()
        if allowed is not None and value not in allowed:
            raise ValueError(f"{where}: {name} {value!r} is not one of {', '.join(allowed)}")
        return value

    files = []
    for entry in field("files").split():
        name, _, digest = entry.partition(":")
        if len(digest) != 64 or not set(digest) <= set("0123456789abcdef"):
            raise ValueError(f"{where}: {entry!r} is not <file>:<sha256>")
        files.append((name, digest))
    if not files:
        raise ValueError(f"{where}: no files")
    source = field("source", SOURCES)
    if source == "fontsource" and not field("version"):
        raise ValueError(f"{where}: a fontsource family needs its npm version")
    return Family(
        name=field("family") or f"<row {where}>",
        source=source,
        version=field("version"),
        style=field("style", STYLES),
        licence=field("licence", LICENCES),
        split=field("split", SPLITS),
        uppercase_only=field("case", ("mixed", "upper")) == "upper",
        files=tuple(files),
    )


def read_table(path: Path = TABLE) -> tuple[Family, ...]:
    """Parse the family table; a malformed row stops with its line number."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    rows = [_row(row, f"{path.name} row {i}") for i, row in enumerate(csv.DictReader(lines), 2)]
    names = [row.name for row in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: families listed twice: {', '.join(duplicates)}")
    return tuple(rows)


@cache
def families() -> tuple[Family, ...]:
    return read_table()


def family(name: str) -> Family | None:
    return next((f for f in families() if f.name == name), None)


def fonts_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "fonts"


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verified_files(fam: Family, folder: Path) -> list[Path] | None:
    """The family's files in `folder` if every one is there with its recorded sha256, else None.

    A file whose bytes differ from the table is refused and removed, so the next `make fonts`
    fetches it again instead of training on something nobody checked.
    """
    paths = []
    for name, digest in fam.files:
        path = folder / name
        if not path.is_file():
            return None
        if sha256(path) != digest:
            print(f"fonts: {path} does not match its recorded sha256; removed (run `make fonts`)")
            path.unlink()
            return None
        paths.append(path)
    return paths


def fetched(fam: Family, root: Path | None = None) -> list[Path] | None:
    return verified_files(fam, fonts_dir(root) / fam.name)


def _extract(fam: Family, tarball: Path, folder: Path) -> None:
    """Copy the family's files out of its npm tarball, each only if its sha256 matches."""
    with tarfile.open(tarball) as archive:
        blobs = {}
        for name, digest in fam.files:
            member = archive.extractfile(f"package/files/{name}")
            data = member.read() if member else b""
            if hashlib.sha256(data).hexdigest() != digest:
                print(f"fonts: {fam.package} {name} does not match its recorded sha256; refused")
                return
            blobs[name] = data
    for name, data in blobs.items():
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(data)


def fetch(root: Path | None = None, table: Iterable[Family] | None = None) -> list[Family]:
    """Fetch every npm family of the table not yet under `<root>/fonts`; return those still
    missing afterwards (none when all went well). Never raises for a missing npm or network:
    it says so in one line, and training uses what is present."""
    wanted = [f for f in (table or families()) if f.source == "fontsource"]
    missing = [f for f in wanted if fetched(f, root) is None]
    present = len(wanted) - len(missing)
    if not missing:
        print(f"fonts: all {len(wanted)} fetched families present in {fonts_dir(root)}")
        return []
    npm = shutil.which("npm")
    if npm is None:
        print(
            f"fonts: npm not found, so {len(missing)} of {len(wanted)} Fontsource families are "
            "missing and training uses the families present; install Node.js (npm) and run "
            "`make fonts` for the whole pool"
        )
        return missing
    folder = fonts_dir(root)
    with (
        exclusive(folder / "fetch"),
        tempfile.TemporaryDirectory(prefix=".fetch.", suffix=".tmp", dir=folder) as tmp,
        tqdm(total=len(missing), desc="fetching fonts (npm pack)", unit="family") as bar,
    ):
        for chunk in (missing[i : i + NPM_CHUNK] for i in range(0, len(missing), NPM_CHUNK)):
            error = pack(npm, [f.package for f in chunk], Path(tmp))
            if error is not None:
                print(
                    f"fonts: npm pack failed ({error}); training uses the families present; "
                    "run `make fonts` again to fetch the rest"
                )
                break
            for fam in chunk:
                tarball = Path(tmp) / f"fontsource-{fam.name}-{fam.version}.tgz"
                if tarball.is_file():
                    _extract(fam, tarball, folder / fam.name)
                bar.update(1)
    failed = [f for f in missing if fetched(f, root) is None]
    done = len(wanted) - len(failed)
    print(f"fonts: {done} of {len(wanted)} Fontsource families in {folder} ({present} were there)")
    return failed


def describe(root: Path | None = None) -> str:
    """One line of what the pool holds here, by source and style."""
    counts: dict[tuple[str, str], int] = {}
    for fam in families():
        here = fam.source == "fontpkg" or fetched(fam, root) is not None
        if here:
            counts[fam.source, fam.style] = counts.get((fam.source, fam.style), 0) + 1
    parts = [f"{n} {source} {style}" for (source, style), n in sorted(counts.items())]
    return f"{sum(counts.values())} of {len(families())} families present: " + ", ".join(parts)
