"""Every test gets its own data root; nothing touches ./data or the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic_lines import SyntheticLines

if TYPE_CHECKING:
    from tiny_recognizer import Tiny

# Small enough to render in a few seconds, large enough for a batch of every split.
TINY_LINES = {"train_size": 48, "val_size": 16, "test_size": 16}


@pytest.fixture(autouse=True)
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def shared_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data root for the tests that only read the tiny synthetic dataset."""
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture
def tiny_lines(shared_data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyntheticLines]:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_root))
    datamodule = SyntheticLines(batch_size=4, **TINY_LINES)
    datamodule.prepare_data()
    datamodule.setup()
    yield datamodule


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """A tiny line reader overfit on a few rendered lines, saved as training saves it."""
    from tiny_recognizer import train

    return train(tmp_path_factory.mktemp("tiny-model") / "tiny.ckpt")
