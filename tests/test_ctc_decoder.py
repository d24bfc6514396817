"""`--decoder ctc`: reading with the CTC head alone. The best path and the prefix beam search on
hand-made frames (checked against every text's CTC probability), then the tiny checkpoint through
`predict`, `evaluate`, `export` and `serve`."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from test_predict import save_pngs
from test_serve import client_of, post_image
from tiny_recognizer import Tiny, render

from text_recognizer import cli
from text_recognizer.ctc_search import best_path, prefix_beam_search
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.decode import BeamOptions, searched
from text_recognizer.inference import load_recognizer
from text_recognizer.lm import LanguageModelScorer
from text_recognizer.serve.model import load_model
from text_recognizer.spec import CHECKPOINT_KEY

run_cli = functools.partial(helpers.run_cli, main=cli.main)
BLANK, START, END, A, B = 0, 1, 2, 3, 4
CLASSES = 5


def frames(*rows: dict[int, float]) -> torch.Tensor:
    """Log probabilities (1, T, CLASSES) of frames given as {class: probability}, the rest of
    each frame's mass spread over the classes not named."""
    out = []
    for row in rows:
        rest = (1 - sum(row.values())) / (CLASSES - len(row))
        out.append([row.get(c, rest) for c in range(CLASSES)])
    return torch.tensor(out, dtype=torch.float64).clamp(min=1e-12).log().unsqueeze(0)


def search(
    log_probs: torch.Tensor,
    width: int,
    lm: LanguageModelScorer | None = None,
    lm_weight: float = 0.0,
) -> list[list[int]]:
    tokens = prefix_beam_search(log_probs, BLANK, START, END, 12, width, lm, lm_weight)
    return [_text(row) for row in tokens.tolist()]


def _text(row: list[int]) -> list[int]:
    return row[: row.index(END)]


def log_prob(log_probs: torch.Tensor, text: list[int]) -> float:
    """log P(the frames read exactly `text`), summed over every path by torch's CTC loss."""
    target = torch.tensor([text or [BLANK]])
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),
        target,
        torch.tensor([log_probs.shape[1]]),
        torch.tensor([len(text)]),
        blank=BLANK,
        reduction="sum",
    )
    return -float(loss)


def test_the_best_path_merges_repeats_and_drops_blanks() -> None:
    """a a _ a b b _ reads "aab"; a frame that most likely holds the end (or start) token reads
    its next likeliest class, as those are never text; a row of blanks reads nothing."""
    line = frames(
        {A: 0.9}, {A: 0.9}, {BLANK: 0.9}, {A: 0.9}, {B: 0.8}, {END: 0.5, B: 0.4}, {BLANK: 0.9}
    )
    empty = frames(*[{BLANK: 0.9}] * 7)
    tokens = best_path(torch.cat((line, empty)), BLANK, START, END, max_length=12)
    assert tokens.tolist() == [[A, A, B, END], [END, BLANK, BLANK, BLANK]]
    assert best_path(line, BLANK, START, END, max_length=2).tolist() == [[A, A]]


def test_a_search_of_width_1_reads_the_best_path_of_confident_frames() -> None:
    """Where each frame's likeliest class holds more than half its mass, keeping the likeliest
    text frame by frame follows the likeliest path; `searched` makes width 1 the best path."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        confident = torch.tensor([BLANK, A, B])[torch.randint(3, (4, 9), generator=generator)]
        logits = torch.randn(4, 9, CLASSES, generator=generator)
        log_probs = logits.scatter_add(2, confident.unsqueeze(2), torch.full((4, 9, 1), 6.0))
        log_probs = log_probs.log_softmax(-1)
        assert (log_probs.exp().amax(-1) > 0.5).all()
        expected = [_text(row) for row in best_path(log_probs, BLANK, START, END, 12).tolist()]
        assert search(log_probs, 1) == expected
    assert searched(BeamOptions(1)) is None  # width 1 reads the best path in any case
    with_lm = BeamOptions(1, PreferAAfterStart(), lm_weight=0.5)
    assert searched(with_lm) == with_lm


def test_the_search_finds_likelier_texts_than_the_best_path() -> None:
    """Two frames each a blank (0.6) or "a" (0.4): the likeliest path reads nothing (0.36), but
    "a" is read by three paths (0.64). On random frames a beam wide enough to hold every text
    finds the likeliest one, by torch's own CTC probabilities."""
    two = frames({BLANK: 0.6, A: 0.4}, {BLANK: 0.6, A: 0.4})
    assert _text(best_path(two, BLANK, START, END, 12)[0].tolist()) == []
    assert search(two, 2) == [[A]]
    assert log_prob(two, [A]) == pytest.approx(np.log(0.64))
    assert log_prob(two, []) == pytest.approx(np.log(0.36))

    generator = torch.Generator().manual_seed(1)
    texts = [list(t) for n in range(5) for t in itertools.product((A, B), repeat=n)]
    for _ in range(10):
        log_probs = torch.randn(1, 4, CLASSES, generator=generator, dtype=torch.float64)
        log_probs = log_probs.log_softmax(-1)
        likeliest = max(texts, key=lambda text: log_prob(log_probs, text))
        assert search(log_probs, len(texts)) == [likeliest]


class PreferAAfterStart:
    """A toy language model: "a" first is likely, anything else not."""

    def score(self, tokens: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        first = tokens[:, -1:] == START
        return torch.where(first & (candidates == A), 0.0, -2.0).double()


def test_the_language_model_changes_the_choice() -> None:
    """The frames lean to "b" (0.5 against 0.4); a model that expects "a" first turns it."""
    one = frames({B: 0.5, A: 0.4}, {BLANK: 0.9})
    assert search(one, 3) == [[B]]
    assert search(one, 3, lm=PreferAAfterStart(), lm_weight=0.0) == [[B]]
    assert search(one, 3, lm=PreferAAfterStart(), lm_weight=1.0) == [[A]]


def _ctc_readings(tiny: Tiny, images: list[np.ndarray], width: int = 1) -> list[str]:
    """What the network's CTC head reads of `images` as one evaluation batch."""
    recognizer = load_recognizer(tiny.checkpoint)
    batch = recognizer.transform.batch([recognizer.fit(image) for image in images])
    with torch.inference_mode():
        log_probs = recognizer.network.ctc_log_probs(batch)
    tokens = (
        best_path(log_probs, BLANK, START, END, recognizer.max_length)
        if width == 1
        else prefix_beam_search(log_probs, BLANK, START, END, recognizer.max_length, width)
    )
    return recognizer.tokenizer.decode_batch(tokens)


def lines(tiny: Tiny) -> list[np.ndarray]:
    return [*tiny.images, *render(["Brown dog"], family="caveat")]


def test_predict_and_evaluate_read_with_the_ctc_head_alone(
    tiny_checkpoint: Tiny,
    tiny_lines: SyntheticLines,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    images = lines(tiny_checkpoint)
    paths = save_pngs(tmp_path / "lines", images)
    ckpt = str(tiny_checkpoint.checkpoint)
    size = str(len(images))  # one batch, as `_ctc_readings` reads them
    for width in (1, 3):
        argv = ["--checkpoint", ckpt, "--decoder", "ctc", "--beam", str(width)]
        code, out, err = run_cli(
            capsys, "predict", *argv, "--batch-size", size, str(tmp_path / "lines")
        )
        assert code == 0, err
        expected = _ctc_readings(tiny_checkpoint, images, width)
        assert out.splitlines() == [f"{p}\t{t}" for p, t in zip(paths, expected, strict=True)]

    out_dir = tmp_path / "report"
    code, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", ckpt, "--decoder", "ctc", "--out", str(out_dir)
    )
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    data = tiny_lines.data_test
    ctc = load_recognizer(ckpt, decoder="ctc").predict_batch(list(data.images))
    joint = load_recognizer(ckpt).predict_batch(list(data.images))
    assert [row["prediction"] for row in report["rows"]] == ctc != joint
    assert report["decoder"] == "ctc" and report["search"] == "greedy"


def _without_ctc_head(tiny: Tiny, path: Path) -> Path:
    checkpoint = torch.load(tiny.checkpoint, weights_only=True)
    network = checkpoint[CHECKPOINT_KEY]["network"]
    network.update(ctc_head=False, ctc_memory=False, ctc_decode_weight=0.0)
    for name in ("weight", "bias"):
        del checkpoint["state_dict"][f"network.ctc_head.{name}"]
    torch.save(checkpoint, path)
    return path


def test_a_checkpoint_without_a_ctc_head_refuses_the_ctc_decoder_in_one_line(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headless = str(_without_ctc_head(tiny_checkpoint, tmp_path / "headless.ckpt"))
    image = save_pngs(tmp_path / "lines", tiny_checkpoint.images[:1])[0]
    code, out, _ = run_cli(capsys, "predict", "--checkpoint", headless, str(image))
    assert code == 0 and out.startswith(f"{image}\t")  # the attention decoder still reads
    message = f"error: {headless}: has no CTC head to read with --decoder ctc; read it with "
    export = ["--format", "torchscript", "--out", str(tmp_path / "out")]
    for command, *rest in (["predict", str(image)], ["evaluate"], ["export", *export], ["serve"]):
        code, out, err = run_cli(
            capsys, command, "--checkpoint", headless, "--decoder", "ctc", *rest
        )
        assert (code, out) == (1, "") and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


# ONNX export takes about 10 s (torch.export, then translation): slow; TorchScript under 1 s.
@pytest.mark.parametrize("format", [pytest.param("onnx", marks=pytest.mark.slow), "torchscript"])
def test_an_export_for_the_ctc_decoder_reads_as_the_checkpoint_does(
    format: str, tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The encoder and CTC head alone, and a manifest that says so: `predict --model` reads the
    export with the CTC head without being told, greedy and with a beam."""
    out, ckpt = tmp_path / "exported", str(tiny_checkpoint.checkpoint)
    argv = ["--checkpoint", ckpt, "--format", format, "--out", str(out), "--decoder", "ctc"]
    code, _, err = run_cli(capsys, "export", *argv)
    assert code == 0, err
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["decoder"] == "ctc" and manifest["format_version"] == 4
    assert list(manifest["files"]) == ["encoder"] and "decoder_step" not in manifest
    assert manifest["encoder"]["outputs"] == ["ctc_log_probs"]
    folder = save_pngs(tmp_path / "lines", lines(tiny_checkpoint))[0].parent
    for beam in ("1", "3"):
        outputs = []
        for source in (["--checkpoint", ckpt, "--decoder", "ctc"], ["--model", str(out)]):
            code, stdout, err = run_cli(capsys, "predict", *source, "--beam", beam, str(folder))
            assert code == 0, err
            outputs.append(stdout)
        assert outputs[0] == outputs[1]

    code, _, err = run_cli(capsys, "predict", "--model", str(out), "--decoder", "joint", "x.png")
    assert code == 1
    assert err == f"error: {out}: was exported for --decoder ctc; export it with --decoder joint\n"
    code, _, err = run_cli(capsys, "export", *argv[:2], "--format", "checkpoint", *argv[4:])
    assert code == 1 and err.startswith("error: --decoder ctc: exports the encoder and CTC head")


def test_a_server_reads_every_request_with_its_decoder(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    """`serve --decoder ctc`: each request read as `predict --decoder ctc --batch-size 1` reads
    it, a request's beam searching with the CTC head; `/v1/model` names the decoder."""
    images = lines(tiny_checkpoint)
    paths = save_pngs(tmp_path, images)
    model = load_model(tiny_checkpoint.checkpoint, decoder="ctc")
    with client_of(model) as client:
        assert client.get("/v1/model").json()["decoder"] == "ctc"
        for path, image in zip(paths, images, strict=True):
            assert (
                post_image(client, path.read_bytes()).json()["text"]
                == _ctc_readings(tiny_checkpoint, [image])[0]
            )
            answer = post_image(client, path.read_bytes(), beam="3").json()
            assert answer["text"] == _ctc_readings(tiny_checkpoint, [image], width=3)[0]
        refused = post_image(client, paths[0].read_bytes(), decoder="joint")  # the server's
        assert refused.status_code == 422 and "unknown field(s) decoder" in refused.text


def test_a_server_reads_with_the_ctc_head_unless_told_or_there_is_none(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    """The faster decoder is a server's default; a network without a CTC head reads with its
    attention decoder."""
    assert load_model(tiny_checkpoint.checkpoint).info["decoder"] == "ctc"
    assert load_model(tiny_checkpoint.checkpoint, decoder="joint").info["decoder"] == "joint"
    headless = _without_ctc_head(tiny_checkpoint, tmp_path / "headless.ckpt")
    assert load_model(headless).info["decoder"] == "joint"
