"""The paragraph curriculum: pages that hold the lines they claim, stages set by the pages drawn,
a killed run resuming on the same stage and pages, and a line checkpoint starting the page
reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fake_documents import untrained_checkpoint
from helpers import compose_with

from text_recognizer.data.pages.assembly import Layout, LinePool
from text_recognizer.data.pages.curriculum import AssembledPages, Curriculum, CurriculumSampler
from text_recognizer.data.sampler import ResumableLoader
from text_recognizer.data.transforms import ImageStem
from text_recognizer.errors import CheckpointError
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.tokenizer import Tokenizer
from training.run import build

CURRICULUM = Curriculum.parse([[0, 1], [40, 2], [80, 4]])
LINE_COUNTS = (2, 3, 4, 5, 6)


def pages(size: int = 24) -> AssembledPages:
    """Pages of 2-6 lines of 20 px of ink, at least 3 px of paper apart."""
    crops, texts = [], []
    for i in range(30):
        crop = np.full((24, 300), 230, dtype=np.uint8)
        crop[2:22, 5 : 100 + 5 * i] = 20
        crops.append(crop)
        texts.append(f"line {i}")
    layout = Layout(line_counts=LINE_COUNTS, gaps=(3, 6), indents=(0, 4))
    stem = ImageStem(576, 640, "shrink")
    return AssembledPages(LinePool(crops, texts), layout, stem, Tokenizer(), 682, size, seed=3)


def ink_bands(page: np.ndarray) -> int:
    """Runs of rows with ink: the lines the image holds."""
    inked = (page < 128).any(axis=1).astype(np.int8)
    return int((np.diff(inked, prepend=0) == 1).sum())


def test_stages_are_set_by_the_pages_drawn() -> None:
    assert [CURRICULUM.lines_at(n) for n in (0, 39, 40, 79, 80, 10**6)] == [1, 1, 2, 2, 4, 4]
    for bad in ([[5, 1]], [[0, 1], [0, 2]], [[0, 0]], [[0, 1, 2]], []):
        with pytest.raises(ValueError, match="curriculum"):
            Curriculum.parse(bad)


@pytest.mark.parametrize("lines", [1, 2, 4, None])
def test_pages_hold_the_lines_they_claim(lines: int | None) -> None:
    data = pages()
    counts = []
    for index in range(len(data)):
        page, text = data.page((1, index, lines))
        held = text.split("\n")
        assert ink_bands(page) == len(held)
        assert all(line.startswith("line ") for line in held)
        counts.append(len(held))
    if lines is None:  # the layout's own counts
        assert max(counts) == 6 and min(counts) == 2
    else:
        assert set(counts) == {lines}
    image, target = data[(1, 0, lines)]
    assert image.shape == (1, 576, 640)
    assert Tokenizer().decode(target) == data.page((1, 0, lines))[1]


def test_a_page_is_set_by_its_key_alone() -> None:
    first, second = pages(), pages()
    assert np.array_equal(first.page((2, 5, 4))[0], second.page((2, 5, 4))[0])
    assert first.page((2, 5, 4))[1] != first.page((3, 5, 4))[1]  # every epoch sees new pages


class Keys(torch.utils.data.Dataset):
    """Serves each key it is asked for: the loader's batches are then the sampler's keys."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[int, int, int]:
        return key


def keys(loader: ResumableLoader) -> list[list[tuple[int, int, int]]]:
    return list(loader)


def loader(epoch: int) -> ResumableLoader:
    sampler = CurriculumSampler(24, 4, LINE_COUNTS, CURRICULUM, seed=7)
    sampler.set_epoch(epoch)
    return ResumableLoader(Keys(), batch_size=4, sampler=sampler, collate_fn=list)


def test_the_stage_follows_the_pages_drawn_across_epochs() -> None:
    # 24 pages an epoch: epoch 0 draws pages 0-23 (1 line), epoch 1 24-47 (2 from page 40), and
    # from page 80 a batch holds 2, 3 or 4 lines (the layout's 2-6, capped at 4).
    counts = [[n for _, _, n in batch] for epoch in range(4) for batch in keys(loader(epoch))]
    assert all(len(set(batch)) == 1 for batch in counts)  # one count a batch: one height
    firsts = [batch[0] for batch in counts]
    caps = [CURRICULUM.lines_at(n) for n in range(0, 96, 4)]
    assert firsts[:20] == caps[:20]
    assert set(firsts[20:]) <= {2, 3, 4}


def test_without_a_curriculum_batches_draw_every_count() -> None:
    sampler = CurriculumSampler(400, 4, LINE_COUNTS, None, seed=7)
    assert {key[2] for key in sampler} == set(LINE_COUNTS)


@pytest.mark.parametrize("stop", [1, 3, 5])
def test_a_killed_run_resumes_on_the_same_stage_and_pages(stop: int) -> None:
    whole = keys(loader(1))
    killed = loader(1)
    batches = iter(killed)
    head = [next(batches) for _ in range(stop)]
    state = killed.state_dict()
    resumed = loader(0)
    resumed.load_state_dict(state)
    assert head + keys(resumed) == whole
    assert {cap for batch in whole for _, _, cap in batch} == {1, 2}  # the stage changes in it


def test_a_line_checkpoint_starts_the_page_reader_with_every_tensor_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = untrained_checkpoint(tmp_path / "line.ckpt")
    source = torch.load(line, weights_only=True)["state_dict"]
    torch.manual_seed(1)
    cfg = compose_with(
        "+experiment=synthetic_paragraphs", f"model.init_from={line}", run_dir=tmp_path
    )
    _, model, _ = build(cfg, tmp_path)
    assert isinstance(model, LitTransformer)
    weights = model.state_dict()
    fitting = {k for k, v in weights.items() if k in source and source[k].shape == v.shape}
    # The line reader's positions run to 82 tokens, the page reader's to 682: all else fits.
    left = {"network.decoder.pos_emb.weight"}
    assert set(weights) - fitting == left
    for key in fitting:
        assert torch.equal(weights[key], source[key]), key
    out = capsys.readouterr().out
    assert "left at their initialisation: " in out
    assert all(key.removeprefix("network.") in out for key in left)


def test_a_file_that_is_not_a_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, weights)
    cfg = compose_with(
        "+experiment=synthetic_paragraphs", f"model.init_from={weights}", run_dir=tmp_path
    )
    with pytest.raises(CheckpointError, match=r"weights.pt: ") as error:
        build(cfg, tmp_path)
    assert "\n" not in str(error.value)
