"""The `documents` datamodule: formats mixed, pages split whole, a charset built from the training
labels (normalised, mapped, thresholded), skipped lines counted, one digest-named h5, and
`text-recognizer-data info documents`."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from fake_documents import lines_of, write_alto, write_line_folder, write_page
from helpers import from_yaml, run_cli

from text_recognizer.data.documents.lines import DocumentLines
from text_recognizer.data.registry import configured
from text_recognizer.errors import DataError


def pages(folder: Path, count: int, texts: list[str | None] | None = None) -> list[Path]:
    return [
        write_page(folder, f"page{i:02d}", lines_of(texts or ["a page", "its lines"]))
        for i in range(count)
    ]


def documents(*sources: Path, **values: Any) -> DocumentLines:
    """documents.yaml's datamodule over `sources`, with `values` in place of the yaml's."""
    built = from_yaml("documents", sources=[str(s) for s in sources], **values)
    assert isinstance(built, DocumentLines)
    return built


def page_of(sample_id: str) -> str:
    return sample_id.split("#")[0]


def test_pages_are_split_whole_by_seeded_fractions(tmp_path: Path) -> None:
    pages(tmp_path / "p", 10)

    def make(seed: int) -> DocumentLines:
        return documents(tmp_path / "p", val_fraction=0.2, test_fraction=0.2, seed=seed)

    datamodule = make(0)
    names = {split: {p.document.path.name for p in ps} for split, ps in datamodule.pages.items()}
    assert [len(names[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert set.union(*names.values()) == {f"page{i:02d}.xml" for i in range(10)}
    assert not (
        names["train"] & names["val"]
        or names["train"] & names["test"]
        or names["val"] & names["test"]
    )
    assert all(len(p.lines) == 2 for ps in datamodule.pages.values() for p in ps)
    again = {s: {p.document.path.name for p in ps} for s, ps in make(0).pages.items()}
    other = {s: {p.document.path.name for p in ps} for s, ps in make(1).pages.items()}
    assert again == names and other != names


def test_a_split_with_its_own_sources_takes_exactly_those(tmp_path: Path) -> None:
    pool = pages(tmp_path / "pool", 4)
    test = write_alto(tmp_path / "test", "alto", lines_of(["held back"]), version=2)
    lines = write_line_folder(tmp_path / "lines", {"x1": "a folder line", "x2": "another"})
    datamodule = documents(
        tmp_path / "pool", tmp_path / "lines", test_sources=[str(test)], val_fraction=0.25
    )
    split = {s: [p.document.path for p in ps] for s, ps in datamodule.pages.items()}
    assert split["test"] == [test]
    assert sorted(split["train"] + split["val"]) == sorted(pool + lines) and len(split["val"]) == 2
    assert {p.document.format for p in datamodule.pages["train"] + datamodule.pages["val"]} >= {
        "PAGE 2019-07-15"
    }


def test_the_charset_is_built_from_normalised_mapped_training_labels(tmp_path: Path) -> None:
    pages(tmp_path / "train", 3, ["aaa bbb", "aaa ccc", "ſo ß", "aaa ½"])
    write_page(tmp_path / "val", "v", lines_of(["bab"]))
    write_page(tmp_path / "test", "t", lines_of(["Zebra", "cab"]))
    common = {
        "train_sources": [str(tmp_path / "train")],
        "val_sources": [str(tmp_path / "val")],
        "test_sources": [str(tmp_path / "test")],
    }
    datamodule = documents(**common, charset_map={"ſ": "s", "½": ""}, min_char_count=4)
    # s (mapped from ſ), o and ß are seen 3 times each: left out, their lines with them
    assert datamodule.tokenizer.charset == " abc"
    assert datamodule.rare == {"s": 3, "o": 3, "ß": 3}
    labels = [label for p in datamodule.pages["train"] for _, label in p.lines]
    assert labels == ["aaa bbb", "aaa ccc", "aaa"] * 3  # ½ dropped, and the space before it
    assert datamodule.skipped["train"] == {"characters outside the charset": 3}
    assert datamodule.skipped["test"] == {"characters outside the charset": 1}  # Zebra
    tokenizer = datamodule.tokenizer
    assert (tokenizer.normalization, tokenizer.mapping) == ("NFC", {"ſ": "s", "½": ""})

    pages(tmp_path / "accents", 1, ["café crème", "naïve"])
    accents = {**common, "train_sources": [str(tmp_path / "accents")]}
    nfc, nfd = documents(**accents), documents(**accents, normalization="NFD")
    assert {"é", "è", "ï"} <= set(nfc.tokenizer.charset)
    assert "\u0301" in nfd.tokenizer.charset and "é" not in nfd.tokenizer.charset
    assert nfd.pages["train"][0].lines[0][1] == unicodedata.normalize("NFD", "café crème")

    kept = documents(**accents, keep_charset=True, charset_map={"&": "+"})
    assert kept.tokenizer.charset.startswith("0123456789ABC") and "é" in kept.tokenizer.charset
    assert "&" not in kept.tokenizer.charset  # mapped away, so not kept either


def test_lines_are_processed_once_into_a_digest_named_file(tmp_path: Path, data_root: Path) -> None:
    folder = tmp_path / "p"
    pages(folder, 3, ["first line", None, "", "third line"])
    datamodule = documents(folder, val_fraction=0.34, test_fraction=0.34, augment=False)
    assert datamodule.skipped["train"] == {"no text": 1, "empty text": 1}
    datamodule.setup()
    assert datamodule.path.parent == data_root / "processed" / "documents"
    assert datamodule.path.name == f"lines-{datamodule.digest}.h5"
    assert datamodule.data_train.images.shape == (2, 48, 640)  # shape/lines.yaml's
    assert datamodule.data_train.texts == ["first line", "third line"]
    built = datamodule.path.stat().st_mtime_ns
    same = documents(folder, val_fraction=0.34, test_fraction=0.34, augment=False)
    same.prepare_data()
    assert same.path == datamodule.path and same.path.stat().st_mtime_ns == built
    (folder / "page01.xml").write_text((folder / "page01.xml").read_text().replace("first", "1st"))
    changed = documents(folder, val_fraction=0.34, test_fraction=0.34)
    assert changed.path != datamodule.path


def test_a_document_that_cannot_be_read_is_named_and_the_others_still_go_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = pages(tmp_path / "p", 3)
    (tmp_path / "p" / "page01.png").unlink()
    datamodule = documents(tmp_path / "p", val_fraction=0.0, test_fraction=0.0)
    assert [p.document.path for p in datamodule.pages["train"]] == [good[0], good[2]]
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"skipped: {good[1]}: its image {tmp_path / 'p' / 'page01.png'}: no such file"
    ]


def test_info_prints_pages_lines_skips_and_the_charset_and_saves_a_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages(tmp_path / "p", 5, ["ſchöne Grüße", "far outside", None])
    write_line_folder(tmp_path / "lines", {"a": "½ Stunde"})
    grid = tmp_path / "grid.png"
    code, out, err = run_cli(
        capsys,
        "info",
        "documents",
        f"datamodule.sources=[{tmp_path / 'p'},{tmp_path / 'lines'}]",
        "datamodule.val_fraction=0.2",
        "datamodule.test_fraction=0.2",
        "--grid",
        str(grid),
    )
    assert code == 0, err
    assert "train 4 pages, 7 lines, skipped 3 no text" in out  # 3 pages and the folder line
    assert "val   1 pages, 2 lines, skipped 1 no text" in out
    assert "test  1 pages, 2 lines, skipped 1 no text" in out
    assert "train      7 samples | label length mean 11.0 max 12" in out
    assert "charset (21): ' GSacdefhinorstu½ßöüſ'" in out
    assert "rarest '½':1, 'S':1, 'ſ':3" in out and grid.is_file()
    code, out, err = run_cli(capsys, "info", "documents", "datamodule.nonsense=1")
    assert code == 1 and "has no key nonsense" in err


def test_the_registry_builds_documents_from_its_yaml_with_overrides(tmp_path: Path) -> None:
    pages(tmp_path / "p", 3)
    factory = configured(
        "documents", [f"datamodule.sources=[{tmp_path / 'p'}]", "datamodule.seed=3"]
    )
    datamodule = factory()
    assert isinstance(datamodule, DocumentLines) and datamodule.max_output_length == 82


def test_info_describes_a_single_page_that_a_fraction_sent_to_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages(tmp_path / "p", 1)
    grid = tmp_path / "grid.png"
    code, out, err = run_cli(
        capsys, "info", "documents", f"datamodule.sources=[{tmp_path / 'p'}]", "--grid", str(grid)
    )
    assert code == 0, err
    assert "test  1 pages, 2 lines" in out
    assert "val   0 pages, 0 lines: empty, test_fraction 0.1 took all 1 pages first" in out
    assert "train 0 pages, 0 lines: empty, test_fraction 0.1 took all 1 pages" in out
    assert "sample grid: the train split has no samples" in out and not grid.exists()
    datamodule = documents(tmp_path / "p")
    datamodule.setup("fit")
    assert "charset (10): ' aegilnpst' (of every split: no training label)" in out
    with pytest.raises(DataError, match="no training line can be used: the train split is empty"):
        datamodule.train_dataloader()
    pages(tmp_path / "blank", 1, [None, None])
    blank = documents(tmp_path / "blank", val_fraction=0.0, test_fraction=0.0)
    blank.setup("fit")
    with pytest.raises(DataError, match=r"used: 1 pages; lines skipped: 2 no text$"):
        blank.train_dataloader()
