from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fontTools import subset
from helpers import lines_config, synthetic_lines
from PIL import Image

from text_recognizer.data.sampler import WidthBucketSampler
from text_recognizer.data.synthetic import pool
from text_recognizer.data.synthetic.fonts import (
    load_folder,
    load_fonts,
    missing_glyphs,
    package_dir,
    pool_families,
)
from text_recognizer.data.synthetic.generate import generate, is_complete
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.render import render_line
from text_recognizer.data.synthetic.text import sample_line
from text_recognizer.data.transforms import crop_to_content
from text_recognizer.data.transforms.ink import content_widths
from text_recognizer.metadata.charset import CHARSET

SMALL = lines_config(train_size=6, val_size=3, test_size=3)


def test_without_fetched_fonts_the_packaged_families_train_and_two_are_held_out() -> None:
    train, heldout = load_fonts(pool_families("train")), load_fonts(pool_families("heldout"))
    assert len(train) + len(heldout) >= 10
    assert pool_families("heldout") == ("indie-flower", "satisfy")
    assert not {f.family for f in train} & {f.family for f in heldout}
    assert not {f.path for f in train} & {f.path for f in heldout}


def test_heldout_fonts_never_appear_in_the_training_split(tiny_lines: SyntheticLines) -> None:
    train_fonts = {tiny_lines.fonts["train"][i] for i in tiny_lines.font_ids["train"]}
    heldout = {f.name for f in load_fonts(pool_families("heldout"))}
    assert train_fonts and not train_fonts & heldout
    for split in ("val", "test"):
        used = {tiny_lines.fonts[split][i] for i in tiny_lines.font_ids[split]}
        assert used <= heldout


def test_batches_are_inverted_fixed_size_images_with_encoded_text(
    tiny_lines: SyntheticLines,
) -> None:
    images, targets = next(iter(tiny_lines.train_dataloader()))
    # Cropped to the batch's widest line, in steps of 32 columns.
    assert images.shape[:3] == (4, 1, 32) and images.shape[-1] <= 640
    assert images.shape[-1] % 32 == 0
    assert images.min() >= 0.0 and images.max() <= 1.0
    # Ink is bright after the stem: the brightest pixels are strokes, most pixels are paper.
    assert images.mean() < 0.35
    assert targets.shape == (4, tiny_lines.max_output_length)
    texts = tiny_lines.tokenizer.decode_batch(targets)
    assert set(texts) <= set(tiny_lines.data_train.texts)


def test_uppercase_only_fonts_get_upper_case_text(tiny_lines: SyntheticLines) -> None:
    upper = [f.name for f in pool.families() if f.uppercase_only and f.source == "fontpkg"]
    upper_names = {f.name for f in load_fonts(upper)}
    assert upper_names
    data = tiny_lines.data_train
    for font_id, text in zip(tiny_lines.font_ids["train"], data.texts, strict=True):
        if tiny_lines.fonts["train"][font_id] in upper_names:
            assert text == text.upper()


def test_generation_is_deterministic_whatever_the_worker_count(tmp_path: Path) -> None:
    first = generate(SMALL, tmp_path / "a", workers=1)
    second = generate(SMALL, tmp_path / "b", workers=2)
    assert first.read_bytes() == second.read_bytes()
    with h5py.File(first) as a, h5py.File(second) as b:
        for split in ("train", "val", "test"):
            assert np.array_equal(a[split]["images"][:], b[split]["images"][:])
            assert list(a[split]["texts"][:]) == list(b[split]["texts"][:])


def test_a_truncated_file_is_detected_and_regenerated(tmp_path: Path) -> None:
    path = generate(SMALL, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert not is_complete(path, SMALL)
    assert generate(SMALL, tmp_path) == path
    assert is_complete(path, SMALL)
    assert path.stat().st_size == len(data)


def test_a_half_written_file_is_never_read_as_valid(tmp_path: Path) -> None:
    path = SMALL.path(tmp_path)
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:  # what a killed writer would leave: no digest, no splits
        f.create_group("train")
    assert not is_complete(path, SMALL)
    # Different parameters never reuse another config's file.
    assert lines_config(train_size=7, val_size=3, test_size=3).path(tmp_path) != path


def test_interrupted_generation_leaves_no_finished_looking_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("text_recognizer.data.synthetic.generate._write_split", fail)
    with pytest.raises(KeyboardInterrupt):
        generate(SMALL, tmp_path)
    folder = SMALL.path(tmp_path).parent
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_font_folder_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-fonts"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        synthetic_lines(font_folders=[str(missing)], train_size=4).prepare_data()


def test_a_font_missing_glyphs_is_reported_and_its_lines_avoid_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "my-hand"
    folder.mkdir()
    source = next(package_dir("kalam").glob("*Regular.ttf"))
    options = subset.Options()
    options.notdef_outline = True
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=CHARSET.replace("e", "").replace("?", ""))
    subsetter.subset(font)
    subset.save_font(font, str(folder / "NoE.ttf"), options)

    (loaded,) = load_folder(folder)
    assert missing_glyphs(loaded.path) == {"e", "?"}
    config = lines_config(
        train_size=8, val_size=2, test_size=2, train_families=[], font_folders=[str(folder)]
    )
    path = generate(config, tmp_path / "data", workers=1)
    assert "NoE cannot draw '?e'" in capsys.readouterr().out
    with h5py.File(path) as f:
        texts = [t.decode() for t in f["train"]["texts"][:]]
    assert texts and not any({"e", "?"} & set(t) for t in texts)


def test_sampled_text_is_prose_like_and_covers_the_charset() -> None:
    rng = np.random.default_rng(0)
    lines = [sample_line(rng) for _ in range(3000)]
    assert set("".join(lines)) == set(CHARSET)
    lengths = np.array([len(line) for line in lines])
    assert lengths.max() <= 80 and 25 < lengths.mean() < 50
    words = " ".join(lines).split()
    assert words.count("the") > 50  # real word frequencies, not uniform letters


def test_rendered_lines_are_dark_ink_on_light_paper_left_aligned() -> None:
    rng = np.random.default_rng(0)
    (font,) = load_fonts(["delius"])
    image = render_line("Hello world", font, rng, height=32, width=640)
    assert image is not None and image.shape == (32, 640) and image.dtype == np.uint8
    ink_columns = np.flatnonzero((image < np.median(image) - 60).any(axis=0))
    assert ink_columns.size and ink_columns.max() < 320  # short text stays on the left
    assert render_line("x" * 400, font, rng, height=32, width=640) is None  # cannot fit


def test_sample_grid_is_a_png_with_every_row(tiny_lines: SyntheticLines, tmp_path: Path) -> None:
    path = tiny_lines.save_grid(tmp_path / "grid.png", count=6)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.height == 6 * (32 + 20)
    assert "charset" in tiny_lines.describe()


def test_width_buckets_visit_every_sample_once_and_crop_no_ink() -> None:
    rng = np.random.default_rng(0)
    widths = rng.integers(50, 640, 103)
    images = np.full((103, 8, 640), 230, dtype=np.uint8)
    for image, width in zip(images, widths, strict=True):
        image[2:6, width - 3 : width] = 20
    assert content_widths(images).tolist() == widths.tolist()
    sampler = WidthBucketSampler(content_widths(images), batch_size=8, shuffle=True)
    batches = sampler.batches()
    assert sorted(i for batch in batches for i in batch) == list(range(103))
    tensor = 1 - torch.from_numpy(images[batches[0]]).float().unsqueeze(1) / 255
    cropped = crop_to_content(tensor)
    assert cropped.shape[-1] >= max(widths[batches[0]])
    assert cropped.shape[-1] - max(widths[batches[0]]) <= 32 + 8


def test_evaluation_reads_in_batches_of_its_own(tiny_lines: SyntheticLines) -> None:
    # Training in batches of 4; validation in one batch of all 16 (eval_batch_size 64).
    assert next(iter(tiny_lines.train_dataloader()))[0].shape[0] == 4
    assert next(iter(tiny_lines.val_dataloader()))[0].shape[0] == 16
    with pytest.raises(ValueError, match="eval_batch_size must be positive, got 0"):
        synthetic_lines(eval_batch_size=0)
