"""EMNIST and EMNIST lines on a small MATLAB file in the real struct layout, served locally."""

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_archives import EMNIST_CLASSES, make_emnist_zip, serve, sha256, write_metadata
from helpers import from_yaml

from text_recognizer.data.download import download, load_metadata
from text_recognizer.data.emnist.characters import balanced_indices, load
from text_recognizer.data.emnist.lines import (
    brown_sentences,
    clean,
    download_brown,
    nltk_folder,
)
from text_recognizer.data.paths import DATA_DIR_ENV


@pytest.fixture(scope="module")
def emnist_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A data root where the small matlab.zip was downloaded, and the upright images it holds."""
    root = tmp_path_factory.mktemp("emnist-data")
    served = tmp_path_factory.mktemp("emnist-served")
    archive, upright = make_emnist_zip(served / "matlab.zip")
    with serve(served) as server:
        write_metadata(root, "emnist", f"{server.url}/matlab.zip", sha256(archive))
        assert download(load_metadata("emnist", root), root)
    return root, upright


@pytest.fixture
def emnist_root(
    emnist_source: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.setenv(DATA_DIR_ENV, str(emnist_source[0]))
    yield emnist_source[0]


def test_characters_are_upright_dark_on_light_and_labelled(
    emnist_root: Path, emnist_source: tuple[Path, dict[str, Any]]
) -> None:
    data = load()
    images, labels = emnist_source[1]["train"]
    processed, chars = data["train"]
    assert processed.shape == (len(labels), 28, 28) and processed.dtype == np.uint8
    np.testing.assert_array_equal(processed, 255 - images)  # transposed back, inverted
    assert list(chars) == [EMNIST_CLASSES[label] for label in labels]
    extracted = load_metadata("emnist").extracted()
    assert [p.name for p in (extracted / "matlab").iterdir()] == ["emnist-byclass.mat"]


def test_emnist_datamodule_splits_and_balances(emnist_root: Path) -> None:
    datamodule = from_yaml("emnist", batch_size=8)
    datamodule.setup()
    assert len(datamodule.data_train) + len(datamodule.data_val) == 62 * 3
    assert len(datamodule.data_test) == 62 * 2
    images, targets = next(iter(datamodule.train_dataloader()))
    assert images.shape == (8, 1, 28, 28) and targets.shape == (8, 3)
    chars = np.array(list("aaaaaaaabbc"))
    counts = Counter(chars[balanced_indices(chars, np.random.default_rng(0))])
    assert set(counts.values()) == {4}  # the mean class size (11 / 3), for every class


def test_emnist_lines_compose_sentences_of_drawable_characters(
    emnist_root: Path, tmp_path: Path
) -> None:
    datamodule = from_yaml(
        "emnist_lines", batch_size=4, train_size=12, val_size=4, test_size=4, max_length=24
    )
    datamodule.setup()
    images, targets = next(iter(datamodule.train_dataloader()))
    assert images.shape == (4, 1, 32, 1024) and targets.shape == (4, 26)
    texts = datamodule.data_train.texts + datamodule.data_val.texts
    assert all(0 < len(t) <= 24 and set(t) <= set(EMNIST_CLASSES + " ") for t in texts)
    # Ink spans roughly the text: wider lines for longer texts.
    widths = [np.flatnonzero((im < 128).any(0)).max() for im in datamodule.data_train.images]
    lengths = [len(t) for t in datamodule.data_train.texts]
    assert np.corrcoef(widths, lengths)[0, 1] > 0.8
    assert datamodule.save_grid(tmp_path / "emnist_lines.png", count=4).is_file()


def test_without_nltk_the_offline_text_source_is_used(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nltk", None)  # as if nltk were not installed
    assert brown_sentences(nltk_folder()) is None
    assert "nltk is not installed" in download_brown()
    assert clean("It's ``42'' -- o.k.?", frozenset(EMNIST_CLASSES)) == "Its 42 ok"


def test_without_the_archive_emnist_says_what_to_run(data_root: Path) -> None:
    for name in ("emnist", "emnist_lines"):
        datamodule = from_yaml(name)
        with pytest.raises(FileNotFoundError, match=r"matlab\.zip is missing: run `make download"):
            datamodule.prepare_data()
