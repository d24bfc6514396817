"""Line folders, as kraken, PyLaia and Calamari keep them: `name.png` (or .jpg, .tif) beside
`name.gt.txt`, its transcription in UTF-8 on one line. Each image is a whole line, and its own
document: a folder records no pages, so its lines are split one by one."""

from __future__ import annotations

from pathlib import Path

from text_recognizer.data.documents.images import page_info
from text_recognizer.data.documents.record import Document, DocumentError, Line, make_line

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
TRANSCRIPTION = ".gt.txt"


def transcription(image: Path) -> Path:
    return image.with_name(image.stem + TRANSCRIPTION)


def is_line_image(path: Path) -> bool:
    """An image with a transcription beside it (a page image beside its XML has none)."""
    return path.suffix.lower() in SUFFIXES and transcription(path).is_file()


def read(image: Path) -> Document:
    text_path = transcription(image)
    try:
        rows = [row for row in text_path.read_text(encoding="utf-8").splitlines() if row.strip()]
    except UnicodeDecodeError as error:
        problem = f"not UTF-8 ({error.reason} at byte {error.start})"
        raise DocumentError(text_path, problem) from None
    if len(rows) > 1:
        raise DocumentError(text_path, f"holds {len(rows)} lines of text; a line has one")
    size, _ = page_info(text_path, image)
    record = make_line(image.stem, (0, 0, *size), None, None, rows[0] if rows else "", 0, size)
    if isinstance(record, Line):
        return Document(image, image, "line folder", (record,), ())
    return Document(image, image, "line folder", (), (record,))
