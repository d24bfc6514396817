"""The character n-gram model: Witten-Bell counted by hand, ARPA written and read back, the
command that trains it, and beam search fused with it from the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_recognizer import TEXTS, Tiny

from text_recognizer import cli
from text_recognizer.data.lm_corpus import default_lm
from text_recognizer.errors import LanguageModelError
from text_recognizer.lm import NgramModel, TokenLanguageModel, read_arpa, train, write_arpa
from text_recognizer.tokenizer import Tokenizer


def test_scores_are_witten_bell_as_counted_by_hand(tmp_path: Path) -> None:
    """Corpus "ab", "b", order 2. Unigrams (targets, end included): a 1, b 2, </s> 2; N = 5,
    T = 3 types, vocabulary of 4 with <unk>: P(w) = (c(w) + 3/4) / 8. Bigram contexts: <s>
    (count 2, 2 types), a (1, 1), b (2, 1): P(w|h) = (c(hw) + T(h) P(w)) / (c(h) + T(h))."""
    p_a, p_b, p_end = 1.75 / 8, 2.75 / 8, 2.75 / 8
    by_hand = {
        "ab": (1 + 2 * p_a) / 4 * (1 + p_b) / 2 * (2 + p_end) / 3,
        "ba": (1 + 2 * p_b) / 4 * p_a / 3 * p_end / 2,
        "b": (1 + 2 * p_b) / 4 * (2 + p_end) / 3,
        "bb": (1 + 2 * p_b) / 4 * p_b / 3 * (2 + p_end) / 3,
    }
    model = train(["ab", "b"], order=2)
    read = read_arpa(write_arpa(model, tmp_path / "toy.arpa"))
    for text, probability in by_hand.items():
        assert math.isclose(model.score(text), math.log10(probability), abs_tol=1e-12)
        assert math.isclose(read.score(text), math.log10(probability), abs_tol=1e-5)
    assert math.isclose(
        read.log10_prob(("<s>",), "<unk>"), math.log10(2 * 0.75 / 8 / 4), abs_tol=1e-5
    )


@pytest.mark.parametrize("order", [1, 3, 5])
def test_every_context_distributes_all_its_probability(order: int) -> None:
    model = train(["the cat sat", "a cab", "that hat", "at"], order)
    words = [gram[0] for gram in model.probs if len(gram) == 1 and gram[0] != "<s>"]
    for context in [("<s>",), ("<s>", "t", "h"), ("a", "t"), ("x", "y", "z"), ("c", "a")]:
        total = sum(10 ** model.log10_prob(context, word) for word in words)
        assert math.isclose(total, 1.0, abs_tol=1e-9), (context, total)


def test_the_token_model_scores_the_tokenizers_indices() -> None:
    tokenizer = Tokenizer()
    model = train(["ab ab", "a b"], order=3)
    lm = TokenLanguageModel(model, tokenizer)
    a, b, space = (tokenizer.encode(c)[1] for c in "ab ")
    history = torch.tensor([[tokenizer.start_index, int(a)]])
    candidates = torch.tensor([[int(b), int(space), tokenizer.end_index, tokenizer.pad_index]])
    scores = lm.score(history, candidates)[0].tolist()
    expected = [model.log10_prob(("<s>", "a"), w) * math.log(10) for w in ("b", "<sp>", "</s>")]
    assert scores[:3] == pytest.approx(expected) and scores[3] == -math.inf


def _lines(tiny: Tiny, folder: Path) -> Path:
    folder.mkdir()
    for i, image in enumerate(tiny.images):
        Image.fromarray(image).save(folder / f"{i}.png")
    return folder


def test_lm_train_then_predict_with_beam_and_lm(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, arpa = tmp_path / "corpus.txt", tmp_path / "lm.arpa"
    corpus.write_text("\n".join(TEXTS * 3) + "\n")
    cli.main(["lm", "train", str(corpus), "--order", "4", "--out", str(arpa)])
    out, _ = capsys.readouterr()
    assert out.startswith(f"wrote {arpa}: order 4, ") and out.endswith(
        "from 18 lines of " + f"{corpus}\n"
    )
    assert isinstance(read_arpa(arpa), NgramModel)
    folder = _lines(tiny_checkpoint, tmp_path / "lines")
    ckpt = str(tiny_checkpoint.checkpoint)
    lm = ("--lm", str(arpa), "--lm-weight", "0.3")  # the tiny model's own text: a light say
    cli.main(["predict", "--checkpoint", ckpt, "--beam", "3", *lm, str(folder)])
    out, err = capsys.readouterr()
    assert err == ""
    assert [line.split("\t")[1] for line in out.splitlines()] == TEXTS


def test_a_missing_or_garbage_lm_is_refused_in_one_line(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage, truncated, missing = tmp_path / "g.arpa", tmp_path / "t.arpa", tmp_path / "m.arpa"
    garbage.write_bytes(b"\x89PNG not a language model")
    write_arpa(train(TEXTS, 3), truncated)
    truncated.write_text(truncated.read_text()[:300])
    cases = {
        missing: "no such language model file; build one with `text-recognizer lm train",
        garbage: "not an ARPA language model",
        truncated: "not an ARPA language model",
    }
    for path, message in cases.items():
        with pytest.raises(LanguageModelError):
            read_arpa(path)
        with pytest.raises(SystemExit) as exit:
            cli.main(
                [
                    *("predict", "--checkpoint", str(tiny_checkpoint.checkpoint), "--beam", "2"),
                    *("--lm", str(path), "x.png"),
                ]
            )
        _, err = capsys.readouterr()
        assert exit.value.code == 1 and err.count("\n") == 1, err
        assert err.startswith(f"error: {path}: {message}"), err


def test_the_default_lm_is_built_once_and_skipped_after(
    data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["lm", "train", "--synthetic-lines", "50", "--order", "3", "--if-missing"]
    cli.main(args)
    out, _ = capsys.readouterr()
    assert out.startswith(f"wrote {default_lm()}: order 3, ") and default_lm().is_relative_to(
        data_root
    )
    built = default_lm().stat().st_mtime_ns
    cli.main(args)
    out, _ = capsys.readouterr()
    assert out == f"{default_lm()}: present, skipped\n"
    assert default_lm().stat().st_mtime_ns == built
    with pytest.raises(SystemExit) as exit:
        cli.main(["lm", "train", str(data_root / "corpus.txt")])
    _, err = capsys.readouterr()
    assert exit.value.code == 1 and err.startswith("error: --out: give the file to write"), err


def test_predict_and_evaluate_fuse_the_default_lm_into_beam_5_where_it_is_built(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model of one unrelated word, weighed heavily, changes what the tiny model reads: it is
    used by default, and not with `--beam 1` (greedy) or `--lm none` (beam 5 alone)."""
    folder = _lines(tiny_checkpoint, tmp_path / "lines")
    predict = ["predict", "--checkpoint", str(tiny_checkpoint.checkpoint), str(folder)]

    def read(*options: str) -> tuple[list[str], str]:
        cli.main([*predict, "--lm-weight", "5", *options])
        out, err = capsys.readouterr()
        return [line.split("\t")[1] for line in out.splitlines()], err

    assert read() == (TEXTS, "")  # no default LM built yet: greedy
    write_arpa(train(["zzzz"] * 20, 3), default_lm())
    readings, err = read()
    assert readings != TEXTS
    assert err == f"reading with beam 5 + LM at weight 5.0: the default LM {default_lm()} " + (
        "(--beam 1: greedy)\n"
    )
    assert read("--beam", "1") == (TEXTS, "")
    assert read("--lm", "none") == (TEXTS, "")
    assert read("--beam", "3")[0] != TEXTS
