"""Joint CTC/attention choice: prefix probabilities checked against every CTC path."""

import itertools
import math

import pytest
import torch

from text_recognizer.ctc_prefix import CTCPrefixScorer
from text_recognizer.decode import LoopSetup, chooser, greedy_loop

BLANK, START, END = 0, 1, 2
A, B = 3, 4


def _collapse(path: tuple[int, ...]) -> list[int]:
    """A CTC frame labelling -> its text: merge repeats, then drop blanks."""
    return [s for i, s in enumerate(path) if s != BLANK and (i == 0 or s != path[i - 1])]


def _enumerated(log_probs: torch.Tensor, text: list[int], whole: bool) -> float:
    """log P(the CTC output starts with `text`), or equals it if `whole`, summing every path."""
    frames, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        out = _collapse(path)
        if out == text if whole else out[: len(text)] == text:
            total += math.exp(sum(float(log_probs[t, s]) for t, s in enumerate(path)))
    return math.log(total)


def test_ctc_alone_chooses_the_most_probable_prefix_and_tracks_its_probability() -> None:
    """With weight 1 and every token a candidate, each choice is the best extension by CTC (the
    end token scoring the text as whole), and the scorer's prefix log probability is exact."""
    torch.manual_seed(0)
    log_probs = torch.randn(1, 6, 5, dtype=torch.float64).log_softmax(-1)  # rows sum to 1
    scorer = CTCPrefixScorer(log_probs, BLANK, END, weight=1.0, candidates=5)
    text: list[int] = []
    for _ in range(4):
        token = int(scorer.choose(torch.randn(1, 5)))
        scores = {
            c: _enumerated(log_probs[0], text, whole=True)
            if c == END
            else _enumerated(log_probs[0], [*text, c], whole=False)
            for c in range(5)
            if c != BLANK
        }
        assert token == max(scores, key=scores.__getitem__)
        assert math.isclose(float(scorer.prefix), scores[token], rel_tol=1e-9)
        if token == END:
            break
        text.append(token)
    assert len(text) >= 2  # the walk covered repeats of the recursion, not only its start


def test_the_weight_must_leave_ctc_a_say() -> None:
    with pytest.raises(ValueError, match="weight"):
        CTCPrefixScorer(torch.zeros(1, 4, 5), BLANK, END, weight=0.0)


def _decode(log_probs: torch.Tensor, attention: list[list[float]], weight: float) -> list[int]:
    """Greedy decoding as `greedy_decode` does it, with fixed attention logits per step."""
    setup = LoopSetup(1, torch.device("cpu"), START, END, BLANK)
    steps = torch.tensor(attention)
    choose = chooser(log_probs, weight, BLANK, END)
    tokens = greedy_loop(lambda _tokens, pos: steps[pos : pos + 1], setup, 3, choose=choose)
    return tokens[0].tolist()


def test_ctc_stops_the_decoder_repeating_what_the_image_holds_once() -> None:
    """The decoder wants 'a a' for an image CTC reads as 'a b' with confidence; jointly, the
    second token is 'b', and the text ends there."""
    frames = torch.full((4, 5), 0.01)
    for t, token in enumerate([A, BLANK, B, BLANK]):
        frames[t, token] = 0.96
    log_probs = frames.log().unsqueeze(0)
    attention = [[-9.0, -9.0, 0.0, 3.0, 0.0], [-9.0, -9.0, 0.0, 1.0, 0.5], [-9.0, -9.0, 3.0, 0, 0]]
    assert _decode(log_probs, attention, weight=0.0) == [A, A, END]
    assert _decode(log_probs, attention, weight=0.5) == [A, B, END]
