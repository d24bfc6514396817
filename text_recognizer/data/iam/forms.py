"""The IAM handwriting database: forms, their writers and lines, and writer-independent splits.

The archive (iamdb.zip) holds `iamdb/forms/<form id>.jpg` at half resolution,
`iamdb/xml/<form id>.xml` and the official split files under `iamdb/task/`. In each XML the root
`form` names the writer, and `handwritten-part/line` carries a line's text and its words' `cmp`
boxes in full-resolution pixels. A line's region is the union of its boxes; a paragraph's, the
union of its lines'. XML is parsed with defusedxml: an archive is input, not code.

The archive's `text` attributes escape a double quote twice (`&amp;quot;`, which parses to the six
characters `&quot;`); both that and the single `&quot;` become `"`, and a label still holding an
entity after that is refused, so no label learns markup. The archive is taken as it is: a form
the split files list without its XML, or without its image, fails naming what is missing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse
from PIL import Image

from text_recognizer.data.download import ensure_extracted, load_metadata
from text_recognizer.errors import DataError, MissingDataError

SPLITS = ("train", "val", "test")
FORM_SCALE = 0.5  # the archive's forms are at half the resolution the XML boxes are given in
LINE_PADDING = 16  # form-image pixels kept around a line's ink, as in the reference pipeline
VAL_WRITER_FRACTION = 0.1  # only without task/ files: share of the remaining writers for val
SPLIT_FILES = {
    "train": ("trainset.txt",),
    "val": ("validationset1.txt", "validationset2.txt"),
    "test": ("testset.txt",),
}

Box = tuple[int, int, int, int]  # x0, y0, x1, y1
ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
INCOMPLETE = "the IAM archive is incomplete"


@dataclass(frozen=True)
class Line:
    id: str
    text: str
    box: Box | None  # full-resolution ink box; None when no word has a cmp box


@dataclass(frozen=True)
class Form:
    id: str
    writer: str
    lines: tuple[Line, ...]
    width: int | None  # full-resolution width from the XML, when given

    @property
    def text(self) -> str:
        """The paragraph's label: its lines joined by the newline token."""
        return "\n".join(line.text for line in self.lines)

    @property
    def box(self) -> Box | None:
        """The paragraph's region, or None if any line has no box (its label would lie)."""
        boxes = [line.box for line in self.lines]
        if not boxes or any(b is None for b in boxes):
            return None
        return union([b for b in boxes if b is not None])


def union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def label(text: str, where: str) -> str:
    """A `text` attribute as the label: the archive's quote escapes undone, no entity left."""
    text = text.replace("&quot;", '"')
    if entity := ENTITY.search(text):
        raise DataError(f"{where}: the text {text!r} holds the entity {entity.group()!r}")
    return text


def _line(element: Element, form_id: str, index: int, path: Path) -> Line:
    boxes = [
        (
            int(cmp.attrib["x"]),
            int(cmp.attrib["y"]),
            int(cmp.attrib["x"]) + int(cmp.attrib["width"]),
            int(cmp.attrib["y"]) + int(cmp.attrib["height"]),
        )
        for cmp in element.findall("word/cmp")
    ]
    line_id = element.attrib.get("id", f"{form_id}-{index:02d}")
    return Line(
        id=line_id,
        text=label(element.attrib["text"], f"{path}, line {line_id}"),
        box=union(boxes) if boxes else None,
    )


def parse_form(path: Path) -> Form:
    """One form's XML; entity declarations and malformed XML are refused naming the file."""
    try:
        root = parse(path).getroot()
    except (DefusedXmlException, ParseError) as error:
        raise DataError(f"{path}: refused to parse ({type(error).__name__}: {error})") from None
    try:
        form_id = root.attrib["id"]
        lines = tuple(
            _line(element, form_id, i, path)
            for i, element in enumerate(root.findall("handwritten-part/line"))
        )
        width = root.attrib.get("width")
        return Form(form_id, root.attrib["writer-id"], lines, int(width) if width else None)
    except DataError:
        raise
    except (KeyError, ValueError) as error:
        raise DataError(f"{path}: not an IAM form XML (bad or missing {error})") from None


def form_id_of(line_id: str) -> str:
    """`a01-000u-00` -> `a01-000u`: a form id is a line id without its line number."""
    parts = line_id.split("-")
    return "-".join(parts[:2])


def read_split_files(task: Path) -> dict[str, str] | None:
    """Form id -> split from the official task/ files, or None if the archive has none."""
    if not task.is_dir():
        return None
    listed: dict[str, str] = {}
    for split, names in SPLIT_FILES.items():
        for name in names:
            path = task / name
            if not path.is_file():
                raise MissingDataError(f"{path} is missing from the IAM archive's task/ folder")
            for line_id in path.read_text().split():
                listed[form_id_of(line_id)] = split
    return listed


def assign_splits(
    forms: Sequence[Form], listed: Mapping[str, str] | None, test_ids: Sequence[str]
) -> dict[str, str]:
    """Form id -> split, keeping every writer in exactly one split.

    A writer listed in several splits goes to the most held-out one (test, then val), and forms
    the lists do not name follow their writer, so no writer is seen in training and tested on.
    Without split files, the metadata's test forms' writers are test, and a fixed tenth of the
    other writers (by a hash of their id) is validation.
    """
    rank = {split: i for i, split in enumerate(SPLITS)}
    listed = listed if listed is not None else {form_id: "test" for form_id in test_ids}
    writer_split: dict[str, str] = {}
    for form in forms:
        split = listed.get(form.id)
        if split is not None:
            current = writer_split.get(form.writer, "train")
            writer_split[form.writer] = max(current, split, key=rank.__getitem__)
    if "val" not in writer_split.values():
        others = sorted(
            {form.writer for form in forms} - set(writer_split),
            key=lambda w: hashlib.sha256(w.encode()).hexdigest(),
        )
        for writer in others[: int(np.ceil(VAL_WRITER_FRACTION * len(others)))]:
            writer_split[writer] = "val"
    return {form.id: writer_split.get(form.writer, "train") for form in forms}


class IAM:
    """The unpacked archive: parsed forms, their splits, and crops of their images."""

    def __init__(self, folder: Path, test_ids: Sequence[str] = ()) -> None:
        self.folder = folder
        self.test_ids = tuple(test_ids)
        if not (folder / "xml").is_dir() or not (folder / "forms").is_dir():
            raise MissingDataError(f"{folder} lacks xml/ or forms/: not an unpacked iamdb.zip")

    @classmethod
    def load(cls, root: Path | None = None) -> IAM:
        """Unpack the downloaded archive if needed (raising if it is missing) and open it."""
        meta = load_metadata("iam", root)
        return cls(ensure_extracted(meta, root=root) / "iamdb", meta.test_ids)

    @cached_property
    def forms(self) -> list[Form]:
        return [parse_form(path) for path in sorted((self.folder / "xml").glob("*.xml"))]

    @cached_property
    def split(self) -> dict[str, str]:
        listed = read_split_files(self.folder / "task")
        missing = sorted(set(listed or ()) - {form.id for form in self.forms})
        if missing:
            raise MissingDataError(
                f"{len(missing)} of the {len(set(listed or ()))} forms the split files in "
                f"{self.folder / 'task'} list have no XML in {self.folder / 'xml'} (e.g. "
                f"{', '.join(missing[:3])}): {INCOMPLETE}"
            )
        return assign_splits(self.forms, listed, self.test_ids)

    def forms_of(self, split: str) -> list[Form]:
        return [form for form in self.forms if self.split[form.id] == split]

    def image_path(self, form: Form) -> Path:
        return self.folder / "forms" / f"{form.id}.jpg"

    def _open(self, form: Form) -> Image.Image:
        path = self.image_path(form)
        if not path.is_file():
            raise MissingDataError(f"{path} is missing: {INCOMPLETE}")
        return Image.open(path)

    def image(self, form: Form) -> Image.Image:
        with self._open(form) as image:
            return image.convert("L")

    def region(self, form: Form, size: tuple[int, int], box: Box, padding: int) -> Box:
        """`box` (full resolution) in the pixels of a form image of `size`, padded and clamped."""
        scale = size[0] / form.width if form.width else FORM_SCALE
        return (
            max(0, int(box[0] * scale) - padding),
            max(0, int(box[1] * scale) - padding),
            min(size[0], int(np.ceil(box[2] * scale)) + padding),
            min(size[1], int(np.ceil(box[3] * scale)) + padding),
        )

    def crop_size(
        self, form: Form, box: Box, scale: float, padding: int = LINE_PADDING
    ) -> tuple[int, int]:
        """(width, height) that `crop` would return, from the image header alone."""
        with self._open(form) as image:
            x0, y0, x1, y1 = self.region(form, image.size, box, padding)
        return max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))

    def crop(
        self,
        form: Form,
        image: Image.Image,
        box: Box,
        scale: float = 1.0,
        padding: int = LINE_PADDING,
    ) -> np.ndarray:
        """The region of `box` in the form image, resized by `scale`: dark ink on light paper."""
        region = self.region(form, image.size, box, padding)
        crop = image.crop(region)
        if scale != 1.0:
            size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
            crop = crop.resize(size, Image.Resampling.LANCZOS)
        return np.asarray(crop, dtype=np.uint8)
