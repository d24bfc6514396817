"""Offline paragraphs from the synthetic lines: shapes, held-out fonts, newlines, reuse."""

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import from_yaml, network_node
from hydra.utils import instantiate

from text_recognizer.data.pages.assembly import Layout, LinePool
from text_recognizer.data.paths import DATA_DIR_ENV
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.tokenizer import Tokenizer
from training.run import network_config


@pytest.fixture
def paragraphs(
    tiny_lines: SyntheticLines, shared_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SyntheticParagraphs]:
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_root))
    pages = from_yaml(
        "synthetic_paragraphs",
        batch_size=2,
        train_size=6,
        val_size=3,
        test_size=3,
        lines=tiny_lines,
    )
    assert isinstance(pages, SyntheticParagraphs)
    pages.setup()
    yield pages


def test_paragraphs_are_pages_of_newline_joined_lines(paragraphs: SyntheticParagraphs) -> None:
    page, _ = paragraphs.data_train[(0, 0, None)]
    assert page.shape == (1, 576, 640)
    assert page[:, :40, :200].max() > 0.5 and page[:, -40:, -40:].max() < 0.3
    images, targets = next(iter(paragraphs.train_dataloader()))
    # Batches are cropped to their content, in steps of 32 px; training ones keep up to 64 rows
    # of the paper below it.
    assert images.shape[:2] == (2, 1) and targets.shape == (2, 682)
    assert images.shape[2] < 576 and images.shape[3] % 32 == 0
    val_images, _ = next(iter(paragraphs.val_dataloader()))
    assert val_images.shape[2] % 32 == 0 and val_images.shape[3] % 32 == 0
    assert all(2 <= t.count("\n") + 1 <= 8 for t in paragraphs.data_train.texts)
    newlines = (targets == Tokenizer().newline_index).sum(1)
    assert (newlines >= 1).all()


def test_paragraphs_reuse_the_synthetic_lines_and_their_font_split(
    paragraphs: SyntheticParagraphs, tiny_lines: SyntheticLines
) -> None:
    assert paragraphs.lines.path() == tiny_lines.path  # the same file, not rendered anew
    with h5py.File(tiny_lines.path) as f:
        lines = {split: {t.decode() for t in f[split]["texts"][:]} for split in ("train", "val")}
    for split, source in (("train", "train"), ("val", "val")):
        data = paragraphs.splits()[split]
        assert {line for t in data.texts for line in t.split("\n")} <= lines[source]


def test_a_small_paragraph_network_reads_a_batch(paragraphs: SyntheticParagraphs) -> None:
    torch.manual_seed(0)
    config = network_node("conv_transformer_paragraphs_small")
    network = instantiate(
        network_config(config, paragraphs.tokenizer, paragraphs.max_output_length)
    )
    images, targets = next(iter(paragraphs.val_dataloader()))
    with torch.no_grad():
        logits = network(images, targets[:, :-1]).logits
    assert logits.shape == (2, 681, len(Tokenizer()))


def test_assembly_respects_the_page_and_the_label_length() -> None:
    crops = [np.full((30, 500), 200, dtype=np.uint8) for _ in range(20)]
    for crop in crops:
        crop[5:25, 10:490] = 0
    pool = LinePool(crops, [f"line {i}" * 3 for i in range(20)])
    layout = Layout(line_counts=(20,), gaps=(5,), indents=(0,))
    rng = np.random.default_rng(0)
    page, text, _ = pool.assemble(rng, layout, height=200, width=640, max_text_length=1000)
    # Lines of 20 px of ink, 5 px apart, in 200 - 2 * 8 px of page: 7 fit.
    assert page.shape == (200, 640) and text.count("\n") + 1 == 7
    page, text, _ = pool.assemble(rng, layout, height=2000, width=640, max_text_length=40)
    assert len(text) <= 40 and text
    assert page.max() == 200  # the page keeps its lines' paper grey


def test_a_page_is_in_one_hand_and_knows_its_family(
    paragraphs: SyntheticParagraphs, tiny_lines: SyntheticLines
) -> None:
    tiny_lines.setup()
    hands: dict[str, set[str]] = {}
    for text, family in zip(tiny_lines.data_val.texts, tiny_lines.groups("val"), strict=True):
        hands.setdefault(text, set()).add(family)
    families = paragraphs.groups("val")
    assert families is not None and len(families) == len(paragraphs.data_val)
    for text, family in zip(paragraphs.data_val.texts, families, strict=True):
        assert all(family in hands[line] for line in text.split("\n")), (text, family)
