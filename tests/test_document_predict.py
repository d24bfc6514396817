"""`text-recognizer predict --checkpoint CKPT PAGE.xml --out DIR`: every line read and written
back with its confidence, the rest of each file as it was; bad pages named in one line each
while the good ones are written; and a charset with non-ASCII characters from the training
pages through a fine-tuning run, its checkpoint and predict."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_documents import (
    lines_of,
    untrained_checkpoint,
    write_alto,
    write_page,
)
from helpers import ROOT, main_env, run_cli
from torchmetrics.functional.text import char_error_rate

from text_recognizer import cli
from text_recognizer.data.documents import read_document
from text_recognizer.data.documents.images import line_image, page_pixels
from text_recognizer.inference import load_recognizer
from text_recognizer.spec import CHECKPOINT_KEY

predict = functools.partial(run_cli, main=cli.main)
SHORT = ("--max-length", "8")  # an untrained network rarely ends a line: decode a few tokens
TAGS_WITH_TEXT = re.compile(r"<(TextEquiv|String|SP)\b")
TEXT_EQUIV = re.compile(r"<TextEquiv\b.*?</TextEquiv>", re.DOTALL)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    return untrained_checkpoint(folder / "base.ckpt")


def unchanged(original: str, written: str) -> None:
    """Every line but those that carry text is the same, byte for byte, in the same order."""

    def rest(text: str) -> list[str]:
        # A reading may hold a newline of its own: keep each TextEquiv on one row.
        text = TEXT_EQUIV.sub(lambda m: m.group(0).replace("\n", " "), text)
        return [row for row in text.split("\n") if not TAGS_WITH_TEXT.search(row)]

    assert rest(written) == rest(original)


def test_predict_writes_each_page_back_with_its_readings(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = [
        write_page(tmp_path / "in", "page2013", lines_of(["one", None]), "2013-07-15"),
        write_page(tmp_path / "in", "page2019", lines_of([None, "two"]), "2019-07-15"),
        write_alto(tmp_path / "in", "alto2", lines_of(["three"]), 2),
        write_alto(tmp_path / "in", "alto4", lines_of([None]), 4),
    ]
    out = tmp_path / "out"
    code, stdout, err = predict(
        capsys,
        "predict",
        *SHORT,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        *map(str, pages),
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in pages)
    assert stdout.splitlines()[0].startswith(
        f"{pages[0]}\t-> {out / 'page2013.xml'} (2 lines, cer "
    )
    recognizer = load_recognizer(checkpoint, max_length=8)
    for page in pages:
        original, written = page.read_text(), (out / page.name).read_text()
        unchanged(original, written)
        document = read_document(page)
        pixels = page_pixels(page, document.image)
        expected = recognizer.predict_batch([line_image(pixels, line) for line in document.lines])
        (out / f"{page.stem}.png").write_bytes((tmp_path / "in" / f"{page.stem}.png").read_bytes())
        again = read_document(out / page.name)
        if "alto" in page.name:  # words, as ALTO keeps them: one String a word
            expected = [" ".join(text.split()) for text in expected]
        assert [line.text for line in again.lines] == expected
        confidences = [float(c) for c in re.findall(r'(?:conf|WC)="([0-9.]+)"', written)]
        assert confidences and all(0 <= c <= 1 for c in confidences)


def test_bad_pages_are_named_in_one_line_each_and_the_good_ones_written(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    good = write_page(folder, "good", lines_of(["fine"]))
    missing = write_page(folder, "missing", lines_of(["x"]))
    (folder / "missing.png").unlink()
    unknown = write_page(folder, "unknown", lines_of(["x"]))
    unknown.write_text(unknown.read_text().replace("pagecontent/2019-07-15", "pagecontent/2099"))
    numbers = write_alto(folder, "numbers", lines_of(["x", "y"]))
    numbers.write_text(numbers.read_text().replace('ID="l1" HPOS="10"', 'ID="l1" HPOS="ten"'))
    bomb = write_page(folder, "bomb", lines_of(["x"]))
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>\n'
        + bomb.read_text().split("\n", 1)[1].replace("tests</Creator>", "&b;</Creator>")
    )
    out = tmp_path / "out"
    bad = [missing, unknown, numbers, bomb]
    code, stdout, err = predict(
        capsys,
        "predict",
        *SHORT,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        *map(str, [*bad, good]),
    )
    assert code == 1
    assert err.splitlines() == [
        f"error: {missing}: its image {folder / 'missing.png'}: no such file",
        f"error: {unknown}: unknown document: root 'PcGts' in namespace "
        "'http://schema.primaresearch.org/PAGE/gts/pagecontent/2099'; this reads PAGE "
        "2013-07-15 or 2019-07-15, or ALTO v2 to v4",
        f"error: {numbers}: line l1: HPOS/VPOS/WIDTH/HEIGHT 'ten' are not numbers",
        f"error: {bomb}: refused: it declares the entity 'a'; documents may not define any",
    ]
    assert stdout.splitlines() == [
        f"{good}\t-> {out / 'good.xml'} (1 lines, cer " + stdout.split("cer ")[1].strip()
    ]
    assert [p.name for p in out.iterdir()] == ["good.xml"]  # nothing half-written


def test_predict_needs_an_out_folder_that_is_not_the_pages_own(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = write_page(tmp_path, "page", lines_of(["x"]))
    code, _, err = predict(capsys, "predict", *SHORT, "--checkpoint", str(checkpoint), str(page))
    assert (
        code == 1
        and err.strip() == f"error: --out: give a folder to write the readings of {page} to"
    )
    code, _, err = predict(
        capsys,
        "predict",
        *SHORT,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path),
        str(page),
    )
    assert code == 1 and "is its own folder: the copy would overwrite it" in err
    assert page.read_text().count("<TextEquiv>") == 1


@pytest.mark.slow
def test_a_non_ascii_charset_goes_through_training_the_checkpoint_and_predict(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fine-tune (two steps) on pages whose text has ſ, é, ß, § and ½ (the last mapped to
    "1/2"): the checkpoint's tokenizer has them with the NFC form and the table, and predict
    reads pages with those characters against their text (the base model reads them too, the
    characters it cannot write counting as its errors)."""
    texts = ["Straße ſo", "§ 4 café", "½ Stunde"]
    for split in ("train", "val", "test"):
        write_page(tmp_path / split, f"{split}-page", lines_of(texts))
    write_alto(tmp_path / "train", "train-alto", lines_of(["café ſchön"]), 4)
    run_dir, conf = tmp_path / "run", tmp_path / "conf"
    (conf / "datamodule").mkdir(parents=True)
    (conf / "datamodule" / "pages.yaml").write_text(
        'defaults:\n  - documents\ncharset_map: {"½": "1/2"}\n', encoding="utf-8"
    )
    overrides = [
        "+experiment=finetune_documents",
        f"model.init_from={checkpoint}",
        *(f"datamodule.{s}_sources=[{tmp_path / s}]" for s in ("train", "val", "test")),
        "datamodule=pages",  # non-ASCII keys live in a yaml (--config-dir): not on a command line
        "datamodule.batch_size=2",
        "trainer.max_steps=2",
        "trainer.val_check_interval=1",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    ]
    result = subprocess.run(
        [sys.executable, "main.py", f"--config-dir={conf}", *overrides],
        cwd=ROOT,
        env=main_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [row for row in result.stdout.splitlines() if "characters:" in row]
    assert summary == [
        "  characters: 79 reused, 5 added '§ßéöſ' (initialised afresh), 0 dropped ''"
    ]
    best = json.loads((run_dir / "metrics.json").read_text())["checkpoint"]
    tokenizer = torch.load(best, weights_only=True)[CHECKPOINT_KEY]["tokenizer"]
    assert set("ſéß§") <= set(tokenizer["charset"]) and "½" not in tokenizer["charset"]
    assert (tokenizer["normalization"], tokenizer["mapping"]) == ("NFC", {"½": "1/2"})
    page = tmp_path / "test" / "test-page.xml"
    code, stdout, err = predict(
        capsys,
        "predict",
        *SHORT,
        "--checkpoint",
        best,
        "--json",
        "--out",
        str(tmp_path / "out"),
        str(page),
    )
    assert code == 0, err
    (record,) = map(json.loads, stdout.splitlines())
    # The CER of the readings it wrote against the page's text as the model writes it (½ mapped).
    written = tmp_path / "out" / page.name
    written.with_suffix(".png").write_bytes(page.with_suffix(".png").read_bytes())
    readings = [line.text or "" for line in read_document(written).lines]
    labels = ["Straße ſo", "§ 4 café", "1/2 Stunde"]
    expected = float(char_error_rate(readings, labels))
    assert record["lines"] == 3 and record["cer"] == pytest.approx(expected) and expected > 0
    code, _, err = predict(
        capsys,
        "predict",
        *SHORT,
        "--checkpoint",
        str(checkpoint),
        "--json",
        "--out",
        str(tmp_path / "base"),
        str(page),
    )
    assert code == 0, err
    assert json.loads(stdout)["lines"] == 3 and (tmp_path / "base" / page.name).is_file()


def test_a_page_is_read_whatever_text_it_holds_and_scored_only_where_it_holds_some(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dollars = write_page(tmp_path / "in", "dollars", lines_of(["costs $5", "", None, "fine"]))
    empty = write_page(tmp_path / "in", "empty", lines_of(["", None]))
    out = tmp_path / "out"
    code, stdout, err = predict(
        capsys, "predict", *SHORT, "--checkpoint", str(checkpoint), "--json", "--out", str(out),
        str(dollars), str(empty),
    )  # fmt: skip
    assert code == 0, err
    records = [json.loads(row) for row in stdout.splitlines()]
    assert [(r["lines"], r["out"]) for r in records] == [
        (4, str(out / "dollars.xml")),
        (2, str(out / "empty.xml")),
    ]
    (out / "dollars.png").write_bytes((tmp_path / "in" / "dollars.png").read_bytes())
    readings = [line.text or "" for line in read_document(out / "dollars.xml").lines]
    expected = float(char_error_rate([readings[0], readings[3]], ["costs $5", "fine"]))
    assert records[0]["cer"] == pytest.approx(expected) and records[1]["cer"] is None
