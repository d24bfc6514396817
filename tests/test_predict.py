"""`TextRecognizer` and `text-recognizer predict | evaluate` on a tiny model overfit on rendered
lines: real text out, every bad input reported in one line, untrusted checkpoints refused."""

from __future__ import annotations

import functools
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import helpers
import numpy as np
import pytest
import torch
from conftest import TINY_LINE_DATA
from fake_archives import write_metadata
from fake_documents import lines_of, write_page
from helpers import datamodule_values, from_yaml, synthetic_lines
from PIL import Image
from tiny_recognizer import NETWORK, TEXTS, Tiny, render

from text_recognizer import cli
from text_recognizer.data import registry
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.decode import greedy_decode
from text_recognizer.inference import CheckpointError, load_recognizer
from text_recognizer.spec import CHECKPOINT_KEY, MOVED, InferenceSpec
from text_recognizer.tokenizer import Tokenizer

run_cli = functools.partial(helpers.run_cli, main=cli.main)


def save_pngs(folder: Path, images: list[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"line{i}.png" for i in range(len(images))]
    for path, image in zip(paths, images, strict=True):
        Image.fromarray(image).save(path)
    return paths


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` grayscale pixels but holds none: Pillow sees the
    size before decoding anything, which is where a decompression bomb must be stopped."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
    )
    return path


def test_the_api_reads_the_lines_it_was_trained_on_from_paths_pil_and_arrays(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    recognizer = load_recognizer(tiny_checkpoint.checkpoint)
    images = tiny_checkpoint.images
    paths = save_pngs(tmp_path, images)
    inputs = [paths[0], Image.fromarray(images[1]), images[2], str(paths[3])]
    inputs += [np.stack([images[4]] * 3, axis=-1), images[5]]  # RGB is converted
    assert recognizer.predict_batch(inputs) == TEXTS
    assert recognizer.predict_batch(inputs, batch_size=1) == TEXTS
    assert recognizer.predict(images[3]) == TEXTS[3]


def test_the_api_is_greedy_decode_on_the_validation_transform(tiny_checkpoint: Tiny) -> None:
    """On lines it never saw (another font), the text is exactly `greedy_decode`'s on the
    batch the datamodule's evaluation transform makes."""
    recognizer = load_recognizer(tiny_checkpoint.checkpoint)
    unseen = render(["Brown dog", "tiny 9", "yes"], family="caveat")
    transform = synthetic_lines(**TINY_LINE_DATA).eval_transform  # the tiny model's lines
    tokens = greedy_decode(recognizer.network, transform.batch(unseen))
    assert transform.params() == recognizer.transform.params()
    assert recognizer.predict_batch(unseen, batch_size=3) == Tokenizer().decode_batch(tokens)


def test_predict_prints_each_image_and_folder_in_order(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tiny_checkpoint.images
    single = save_pngs(tmp_path / "one", images[:1])
    folder = save_pngs(tmp_path / "folder", images[1:])
    (tmp_path / "folder" / "notes.txt").write_text("not listed: not an image extension")
    ckpt = str(tiny_checkpoint.checkpoint)
    code, out, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        ckpt,
        "--batch-size",
        "2",
        str(single[0]),
        str(tmp_path / "folder"),
    )
    assert code == 0, err
    assert out.splitlines() == [f"{p}\t{t}" for p, t in zip(single + folder, TEXTS, strict=True)]

    code, out, err = run_cli(capsys, "predict", "--checkpoint", ckpt, "--json", str(single[0]))
    assert code == 0, err
    (record,) = map(json.loads, out.splitlines())
    assert record["path"] == str(single[0]) and record["text"] == TEXTS[0]
    assert record["seconds"] > 0


def test_bad_images_are_reported_in_one_line_each_and_the_good_ones_still_read(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = save_pngs(tmp_path, tiny_checkpoint.images[:2])
    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 256), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty = tmp_path / "empty.png"
    empty.touch()
    text = tmp_path / "notes.txt"
    text.write_text("a note, not an image")
    pixels = Image.MAX_IMAGE_PIXELS or 0
    bad = {
        text: "not an image",
        empty: "empty file",
        truncated: "truncated or corrupt image",
        tmp_path / "missing.png": "no such file",
        # Past twice Pillow's limit it refuses; between once and twice it only warns.
        png_header(tmp_path / "bomb.png", 20_000, 20_000): "too large to decode safely",
        png_header(tmp_path / "big.png", 10_000, pixels // 10_000 + 1): "too large to decode",
    }
    ckpt = str(tiny_checkpoint.checkpoint)
    argv = ["predict", "--checkpoint", ckpt, str(good[0]), *map(str, bad), str(good[1])]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1
    assert out.splitlines() == [f"{good[0]}\t{TEXTS[0]}", f"{good[1]}\t{TEXTS[1]}"]
    lines = err.splitlines()
    assert len(lines) == len(bad) and "Traceback" not in err
    for line, (path, problem) in zip(lines, bad.items(), strict=True):
        assert line.startswith(f"error: {path}: {problem}"), line

    code, out, _ = run_cli(capsys, "predict", "--checkpoint", ckpt, "--json", *map(str, bad))
    assert code == 1
    assert [json.loads(line)["error"].split(" (")[0] for line in out.splitlines()] == [
        "not an image",
        "empty file",
        "truncated or corrupt image",
        "no such file",
        "too large to decode safely",
        "too large to decode safely",
    ]
    code, _, err = run_cli(capsys, "predict", "--checkpoint", ckpt, "--debug", str(empty))
    assert code == 1 and "Traceback" in err and err.endswith(f"error: {empty}: empty file\n")


def test_an_empty_folder_is_an_error_but_not_the_end(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    good = save_pngs(tmp_path / "good", tiny_checkpoint.images[:1])
    ckpt = str(tiny_checkpoint.checkpoint)
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", ckpt, str(tmp_path / "empty"), str(good[0])
    )
    assert code == 1 and out == f"{good[0]}\t{TEXTS[0]}\n"
    assert err == f"error: {tmp_path / 'empty'}: folder holds no image files\n"


class Evil:
    """Unpickling this calls open(marker, "w"): the file appearing means code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_bad_beam_width_is_refused_before_anything_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.ckpt")
    code, out, err = run_cli(capsys, "predict", "--checkpoint", missing, "--beam", "0", "x.png")
    assert (code, out, err) == (1, "", "error: --beam: must be at least 1, got 0\n")


def test_a_crafted_pickle_runs_no_code(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = torch.load(tiny_checkpoint.checkpoint, weights_only=True)
    marker = tmp_path / "marker"
    torch.save({**checkpoint, "extra": Evil(marker)}, tmp_path / "evil.ckpt")
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", str(tmp_path / "evil.ckpt"), "x.png"
    )
    assert code == 1 and out == ""
    assert err.startswith(f"error: {tmp_path / 'evil.ckpt'}: refused: unpickling it would call ")
    assert "weights_only" in err and err.count("\n") == 1
    assert not marker.exists()
    # The file is a real attack: the unsafe load does run its code.
    torch.load(tmp_path / "evil.ckpt", weights_only=False)
    assert marker.exists()


def _tampered(tiny: Tiny, path: Path, change: dict[str, object]) -> Path:
    checkpoint = torch.load(tiny.checkpoint, weights_only=True)
    spec = checkpoint[CHECKPOINT_KEY]
    for key, value in change.items():
        if value is None:
            del checkpoint[key]
        else:
            spec[key] = value
    torch.save(checkpoint, path)
    return path


def test_a_format_1_checkpoint_still_loads_and_reads_as_it_did(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    """Format 1 had no resize rule and stated the network's inner widths."""
    spec = torch.load(tiny_checkpoint.checkpoint, weights_only=True)[CHECKPOINT_KEY]
    assert spec["format_version"] == 2 and spec["transform"]["resize"] == "height"
    format_1 = {
        "format_version": 1,
        "network": {**spec["network"], "encoder_dim": 32, "decoder_dim": 32},
        "transform": {k: v for k, v in spec["transform"].items() if k != "resize"},
    }
    old = load_recognizer(_tampered(tiny_checkpoint, tmp_path / "v1.ckpt", format_1))
    new = load_recognizer(tiny_checkpoint.checkpoint)
    assert old.spec.transform == new.spec.transform
    assert old.predict_batch(tiny_checkpoint.images) == new.predict_batch(tiny_checkpoint.images)
    # A page model of format 1 reads pages as it was trained on them: never scaled up.
    pages = {
        **format_1,
        "datamodule": {"_target_": "text_recognizer.data.iam_paragraphs.IAMParagraphs"},
    }
    assert InferenceSpec.from_dict({**spec, **pages}, "v1").eval_transform().stem.resize == "shrink"


def test_a_paragraph_checkpoint_with_line_keys_builds_the_datamodule_it_was_trained_on(
    tiny_checkpoint: Tiny,
) -> None:
    """Before synthetic_paragraphs.yaml composed the line config, it named the lines' sizes and
    height (`line_*`) and the renderer's defaults did the rest: such a checkpoint's datamodule
    reads the lines today's config reads."""
    spec = torch.load(tiny_checkpoint.checkpoint, weights_only=True)[CHECKPOINT_KEY]
    today = datamodule_values("synthetic_paragraphs")
    lines = today.pop("lines")
    recorded = {
        "_target_": "text_recognizer.data.synthetic_paragraphs.SyntheticParagraphs",
        **today,
        **{f"line_{key}": lines[key] for key in ("train_size", "val_size", "test_size", "height")},
    }
    old = InferenceSpec.from_dict({**spec, "datamodule": recorded}, "old").build_datamodule("old")
    assert isinstance(old, SyntheticParagraphs)
    new = from_yaml("synthetic_paragraphs")
    assert isinstance(new, SyntheticParagraphs) and old.lines == new.lines
    assert old.path == new.path


def test_a_line_checkpoint_from_before_the_sentences_builds_the_data_it_was_trained_on(
    tiny_checkpoint: Tiny,
) -> None:
    """A synthetic lines checkpoint recorded before `sentences` existed drew no sentences: it
    rebuilds today's default data (sentences 0), not a refusal for the missing key."""
    spec = torch.load(tiny_checkpoint.checkpoint, weights_only=True)[CHECKPOINT_KEY]
    today = datamodule_values("synthetic_lines", sentences=0.0)
    recorded = {
        "_target_": "text_recognizer.data.synthetic_lines.SyntheticLines",
        **{k: v for k, v in today.items() if k != "sentences"},
    }
    old = InferenceSpec.from_dict({**spec, "datamodule": recorded}, "old").build_datamodule("old")
    assert isinstance(old, SyntheticLines) and old.config.sentences == 0.0
    assert old.path == from_yaml("synthetic_lines", sentences=0.0).path


# What a checkpoint written before `text_recognizer.data` was organised by source records of each
# datamodule: its class's path then, and the keys its config did not have then (the IAM paragraph
# variants were subclasses, and the real-only one took no synthetic pages).
OLD = "text_recognizer.data."
SYNTHETIC_KEYS = ("real_train", "synthetic_size", "seed", "curriculum")
RECORDED = {
    "synthetic_lines": (f"{OLD}synthetic_lines.SyntheticLines", ()),
    "synthetic_paragraphs": (f"{OLD}synthetic_paragraphs.SyntheticParagraphs", ()),
    "emnist": (f"{OLD}emnist.EMNIST", ()),
    "emnist_lines": (f"{OLD}emnist_lines.EMNISTLines", ()),
    "iam_lines": (f"{OLD}iam_lines.IAMLines", ()),
    "iam_paragraphs": (f"{OLD}iam_paragraphs.IAMParagraphs", SYNTHETIC_KEYS),
    "iam_synthetic_paragraphs": (f"{OLD}iam_paragraphs.IAMSyntheticParagraphs", ("real_train",)),
    "iam_extended_paragraphs": (f"{OLD}iam_paragraphs.IAMExtendedParagraphs", ("real_train",)),
    "documents": (f"{OLD}document_lines.DocumentLines", ()),
}


def test_every_old_datamodule_path_is_read_as_a_class_of_today() -> None:
    assert set(MOVED) == {target for target, _ in RECORDED.values()}
    assert {target for target, _ in MOVED.values()} == {
        f"{cls.__module__}.{cls.__name__}" for cls in registry.CLASSES.values()
    }


@pytest.mark.parametrize("name", list(registry.CLASSES))
def test_a_checkpoint_naming_a_datamodule_where_it_was_builds_it_as_it_is(
    name: str, tiny_checkpoint: Tiny, data_root: Path, tmp_path: Path
) -> None:
    """Such a checkpoint builds today's class with today's config, reading today's files."""
    for archive in ("iam", "emnist"):  # the real datasets' files are named by their archives
        write_metadata(data_root, archive, f"http://127.0.0.1/{archive}.zip", "0" * 64)
    sources = []
    if name in registry.OWN:
        for i in range(3):  # one a split
            write_page(tmp_path / "pages", f"p{i}", lines_of(["a line"]))
        sources = [f"datamodule.sources=[{tmp_path / 'pages'}]"]
    today = registry.values(name, sources)
    target, lacked = RECORDED[name]
    recorded = {k: v for k, v in today.items() if k not in lacked} | {"_target_": target}
    if name == "synthetic_paragraphs":
        recorded["lines"] = {**today["lines"], "_target_": RECORDED["synthetic_lines"][0]}
    spec = torch.load(tiny_checkpoint.checkpoint, weights_only=True)[CHECKPOINT_KEY]
    old = InferenceSpec.from_dict({**spec, "datamodule": recorded}, "old").build_datamodule("old")
    new = from_yaml(name, *sources)
    assert type(old) is type(new) and old.paths == new.paths != []
    for key in SYNTHETIC_KEYS:
        assert getattr(old, key, None) == getattr(new, key, None)


def test_bad_checkpoints_are_refused_in_one_line_naming_the_problem(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = save_pngs(tmp_path, tiny_checkpoint.images[:1])[0]
    wider = {**NETWORK, "decoder": {**NETWORK["decoder"], "dim_head": 32}}
    bigger_vocabulary = {
        **NETWORK,
        "num_tokens": 90,
        "decoder": {**NETWORK["decoder"], "num_tokens": 90},
    }
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_checkpoint.checkpoint.read_bytes()[:5000])
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    cases = {
        tmp_path / "missing.ckpt": "no such file",
        tmp_path / "text.ckpt": "not a PyTorch checkpoint",
        truncated: "not a PyTorch checkpoint, or corrupt or truncated",
        _tampered(tiny_checkpoint, tmp_path / "plain.ckpt", {CHECKPOINT_KEY: None}): (
            f"no {CHECKPOINT_KEY!r} entry"
        ),
        _tampered(tiny_checkpoint, tmp_path / "wider.ckpt", {"network": wider}): (
            "its weights do not fit the network its config describes: shape mismatch "
            "(checkpoint vs network) decoder.blocks.0.attn.to_out.weight (32, 32) vs (32, 64)"
        ),
        _tampered(tiny_checkpoint, tmp_path / "vocab.ckpt", {"network": bigger_vocabulary}): (
            "vocabulary size mismatch: the tokenizer has 83 tokens, the network 90"
        ),
        _tampered(
            tiny_checkpoint,
            tmp_path / "charset.ckpt",
            {"tokenizer": {"charset": "abc", "special_tokens": ["<p>", "<s>", "<e>", "\n"]}},
        ): "vocabulary size mismatch: the tokenizer has 7 tokens, the network 83",
        _tampered(
            tiny_checkpoint,
            tmp_path / "foreign.ckpt",
            {"network": {**NETWORK, "_target_": "os.system"}},
        ): "refusing to build 'os.system': only Module classes of the text_recognizer package",
        _tampered(
            tiny_checkpoint,
            tmp_path / "function.ckpt",
            {"network": {"_target_": "text_recognizer.data.paths.data_root"}},
        ): "refusing to build 'text_recognizer.data.paths.data_root'",
    }
    for path, problem in cases.items():
        code, out, err = run_cli(capsys, "predict", "--checkpoint", str(path), str(good))
        assert code == 1 and out == "", path
        assert err.startswith(f"error: {path}: {problem}") and err.count("\n") == 1, err
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_recognizer(tmp_path / "wider.ckpt")


def test_evaluate_reports_on_the_datamodule_the_model_was_trained_on(
    tiny_checkpoint: Tiny,
    tiny_lines: SyntheticLines,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "report"
    ckpt = str(tiny_checkpoint.checkpoint)
    code, stdout, err = run_cli(
        capsys, "evaluate", "--checkpoint", ckpt, "--out", str(out), "--worst", "3"
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    data = tiny_lines.data_test
    expected = load_recognizer(ckpt).predict_batch(list(data.images))
    assert report["datamodule"] == "SyntheticLines" and report["samples"] == len(data) == 16
    assert [r["target"] for r in report["rows"]] == data.texts
    assert [r["prediction"] for r in report["rows"]] == expected
    # Corpus CER is total edits over total reference characters: the rows' CERs weighted.
    lengths = np.array([len(t) for t in data.texts])
    weighted = (
        sum(r["cer"] * n for r, n in zip(report["rows"], lengths, strict=True)) / lengths.sum()
    )
    assert report["cer"] == pytest.approx(weighted, rel=1e-5) and report["wer"] > 0
    worst = sorted(report["rows"], key=lambda r: -r["cer"])[:3]
    assert [r["cer"] for r in report["worst"]] == [r["cer"] for r in worst]
    # Per held-out family: each family's CER over its own rows, and every test row counted once.
    families = tiny_lines.groups("test")
    assert set(report["per_family"]) == set(families) == {"satisfy", "indie-flower"}
    for family, row in report["per_family"].items():
        mine = [i for i, f in enumerate(families) if f == family]
        edits = sum(report["rows"][i]["cer"] * lengths[i] for i in mine)
        assert row["cer"] == pytest.approx(edits / lengths[mine].sum(), rel=1e-5)
        assert row["samples"] == len(mine) and f"{family} " in stdout
    grid = Image.open(out / "predictions.png")
    assert grid.height == 3 * (32 + 4 + 3 * 16)
    assert f"cer {report['cer']:.4f}" in stdout and str(out / "report.json") in stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_evaluate_on_another_datamodule_checks_the_tokenizer(
    tiny_checkpoint: Tiny,
    tiny_lines: SyntheticLines,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from text_recognizer.data import registry

    class FewerCharacters(SyntheticLines):
        def __init__(self) -> None:
            super().__init__(**datamodule_values("synthetic_lines", **TINY_LINE_DATA))
            self.tokenizer = Tokenizer(self.tokenizer.charset.replace("?", ""))

    monkeypatch.setattr(
        registry, "DATASETS", {"synthetic_lines": lambda: tiny_lines, "odd": FewerCharacters}
    )
    ckpt = str(tiny_checkpoint.checkpoint)
    code, stdout, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        ckpt,
        "--datamodule",
        "synthetic_lines",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 0 and "SyntheticLines test: 16 samples" in stdout, err
    code, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", ckpt, "--datamodule", "FewerCharacters"
    )
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(
        f"error: {ckpt}: tokenizer mismatch: its charset (83 tokens) differs from "
        "FewerCharacters's (82 tokens): only in the checkpoint '?', only in the datamodule ''"
    )
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", ckpt, "--datamodule", "mnist")
    assert code == 1 and err.startswith("error: --datamodule: unknown 'mnist'; choose from")


def test_evaluate_without_the_data_stops_in_one_line(
    tiny_checkpoint: Tiny, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(tiny_checkpoint.checkpoint)
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", ckpt, "--datamodule", "iam_lines")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("error: ") and "make download" in err


@pytest.mark.slow
def test_a_checkpoint_written_by_main_py_predicts_with_the_api_and_the_console_script(
    data_root: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "TEXT_RECOGNIZER_DATA_DIR": str(data_root)}
    run_dir = tmp_path / "run"
    overrides = ["datamodule.train_size=16", "datamodule.val_size=8", "datamodule.test_size=8"]
    result = subprocess.run(
        [sys.executable, "main.py", *overrides, f"hydra.run.dir={run_dir}", "+debug=limit_batches"],
        cwd=helpers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    best = run_dir / "checkpoints" / "best.ckpt"
    recognizer = load_recognizer(best, max_length=8)
    assert recognizer.spec.datamodule is not None
    assert recognizer.spec.datamodule["test_size"] == 8
    assert recognizer.transform.params() == {
        "height": 48,
        "width": 640,
        "crop_width": True,
        "resize": "height",
    }
    image = save_pngs(tmp_path, render(["anything"]))[0]
    text = recognizer.predict(image)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "text_recognizer.cli",
            "predict",
            "--checkpoint",
            str(best),
            "--max-length",
            "8",
            str(image),
        ],
        cwd=helpers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{image}\t{text}\n"
