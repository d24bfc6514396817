"""Your own documents: PAGE XML, ALTO and line folders read into one record type (`record.py`),
and readings written back into the XML they came from, the rest of the file untouched."""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from xml.etree.ElementTree import Element

from text_recognizer.data.documents import alto, folders, page_xml, xml
from text_recognizer.data.documents.record import Document, DocumentError, Line, Reading, Skipped
from text_recognizer.errors import DataError

__all__ = [
    "Document",
    "DocumentError",
    "Line",
    "Reading",
    "Skipped",
    "find_documents",
    "read_document",
    "write_readings",
]

KNOWN = "PAGE 2013-07-15 or 2019-07-15, or ALTO v2 to v4"
Reader = Callable[[Path, Element], Document]
Writer = Callable[[Path, bytes, Mapping[str, Reading]], bytes]


def read_document(path: Path) -> Document:
    """A PAGE or ALTO file (by its root's namespace), or a line image with its `.gt.txt`."""
    if folders.is_line_image(path):
        return folders.read(path)
    _, root = xml.parse(path)
    return _format(path, root)[0](path, root)


def write_readings(path: Path, readings: Mapping[str, Reading]) -> bytes:
    """The bytes of the XML at `path` with `readings` (by line id) written in."""
    data, root = xml.parse(path)
    return _format(path, root)[1](path, data, readings)


def _format(path: Path, root: Element) -> tuple[Reader, Writer]:
    namespace, local = xml.split_tag(root.tag)
    if namespace in page_xml.NAMESPACES:
        return page_xml.read, page_xml.write
    if namespace in alto.NAMESPACES:
        return alto.read, alto.write
    raise DocumentError(
        path, f"unknown document: root {local!r} in namespace {namespace!r}; this reads {KNOWN}"
    )


def find_documents(sources: Sequence[str]) -> list[Path]:
    """The documents `sources` name, in order and each once: a file, a folder's XML files and
    line images (not its subfolders), or a glob of either."""
    found: list[Path] = []
    for source in sources:
        given = Path(source).expanduser()
        pattern = any(c in source for c in "*?[")
        matches = [Path(m) for m in sorted(glob.glob(str(given)))] if pattern else [given]
        documents = [d for m in matches for d in _documents(m)]
        if not documents:
            raise DataError(f"datamodule.sources: {source} names no PAGE, ALTO or .gt.txt lines")
        found += documents
    return list(dict.fromkeys(found))


def _documents(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.iterdir() if p.suffix.lower() == ".xml" or folders.is_line_image(p)
        )
    return [path] if path.suffix.lower() == ".xml" or folders.is_line_image(path) else []
