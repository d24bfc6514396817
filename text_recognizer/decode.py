"""Greedy and beam decoding. The kv cache is the one decoding path; the prefix-recomputing
variants exist only as the references that tests and benchmarks compare it with. Networks with a
`ctc_decode_weight` score each token jointly with their CTC head (`CTCPrefixScorer`); beam search
can add a language model's score (shallow fusion).

A network with a CTC head can also read with the head alone (`DECODERS`, `ctc_decode`): one
encoder pass, then the best path, or a prefix beam search over its frames
(`text_recognizer.ctc_search`, with the same language model fusion). `decode_images` is the one
dispatch, `searched` the one rule for greedy against beam search."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from text_recognizer.ctc_prefix import CTCPrefixScorer
from text_recognizer.ctc_search import best_path, prefix_beam_search
from text_recognizer.errors import CheckpointError, InferenceError
from text_recognizer.lm import LanguageModelScorer, fused
from text_recognizer.network.conv_transformer import ConvTransformer

DECODERS = ("joint", "ctc")
"""How a network reads (`--decoder`): `joint`, its attention decoder (with its CTC head's share,
`ctc_decode_weight`); `ctc`, its CTC head alone."""

Choose = Callable[[Tensor], Tensor]
"""Logits (b, num_tokens) of the next token -> the token chosen for each row (b,)."""


@torch.inference_mode()
def greedy_decode(
    network: ConvTransformer,
    images: Tensor,
    max_length: int | None = None,
    stop_at_end: bool = True,
) -> Tensor:
    """Tokens (b, l) after the start token: argmax each step, pad after each sequence's end.

    Encodes once, then feeds one token per step through `Decoder.step`. With `stop_at_end`, l is
    the step at which every sequence had ended (at most `max_length`); without, always
    `max_length`. Call on a network in eval mode.
    """
    decoder = network.decoder
    memory, ctc_log_probs = network.encode_for_decoding(images)
    max_length = max_length or network.max_output_length
    decoder.setup_cache(memory, max_length)
    try:
        return greedy_loop(
            lambda tokens, pos: decoder.step(tokens[:, pos : pos + 1], pos)[:, -1],
            _setup(network, memory),
            max_length,
            stop_at_end,
            chooser(ctc_log_probs, network.ctc_decode_weight, network.pad_index, network.end_index),
        )
    finally:
        decoder.clear_cache()


@torch.inference_mode()
def greedy_decode_reference(
    network: ConvTransformer,
    images: Tensor,
    max_length: int | None = None,
    stop_at_end: bool = True,
) -> Tensor:
    """`greedy_decode` without the cache: each step runs the decoder over the whole prefix.

    Quadratic in length; only the reference for tests and benchmarks.
    """
    memory, ctc_log_probs = network.encode_for_decoding(images)
    return greedy_loop(
        lambda tokens, pos: network.decoder(tokens[:, : pos + 1], memory)[:, -1],
        _setup(network, memory),
        max_length or network.max_output_length,
        stop_at_end,
        chooser(ctc_log_probs, network.ctc_decode_weight, network.pad_index, network.end_index),
    )


@torch.inference_mode()
def token_probabilities(network: ConvTransformer, images: Tensor, tokens: Tensor) -> Tensor:
    """The decoder's probability (b, l) of each of `tokens` (b, l, what decoding chose after the
    start token) given those before it: one teacher-forced pass, so a reading is scored by the
    same decoder that wrote it, whatever share the CTC head had in the choice."""
    start = torch.full_like(tokens[:, :1], network.start_index)
    logits = network(images, torch.cat([start, tokens[:, :-1]], dim=1)).logits
    return logits.float().softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def argmax(logits: Tensor) -> Tensor:
    return logits.argmax(-1)


def chooser(ctc_log_probs: Tensor | None, weight: float, blank: int, end_index: int) -> Choose:
    """Argmax, or the joint choice with the CTC head's log probabilities when there are some."""
    if ctc_log_probs is None or weight == 0:
        return argmax
    return CTCPrefixScorer(ctc_log_probs, blank, end_index, weight).choose


class LoopSetup(NamedTuple):
    """What the loop needs to know besides the scores: batch, device and the special tokens."""

    batch: int
    device: torch.device
    start_index: int
    end_index: int
    pad_index: int


def _setup(network: ConvTransformer, memory: Tensor) -> LoopSetup:
    return LoopSetup(
        memory.shape[0], memory.device, network.start_index, network.end_index, network.pad_index
    )


def greedy_loop(
    next_logits: Callable[[Tensor, int], Tensor],
    setup: LoopSetup,
    max_length: int,
    stop_at_end: bool = True,
    choose: Choose = argmax,
) -> Tensor:
    """The loop every decoder shares (these two, and exported models' cached step):
    `next_logits(tokens, pos)` scores the token after `pos` from tokens (b, max_length + 1), and
    `choose` picks it from the scores."""
    tokens = torch.full(
        (setup.batch, max_length + 1), setup.pad_index, dtype=torch.long, device=setup.device
    )
    tokens[:, 0] = setup.start_index
    ended = torch.zeros(setup.batch, dtype=torch.bool, device=setup.device)
    for pos in range(max_length):
        next_token = choose(next_logits(tokens, pos)).masked_fill(ended, setup.pad_index)
        tokens[:, pos + 1] = next_token
        ended |= next_token == setup.end_index
        if stop_at_end and bool(ended.all()):
            return tokens[:, 1 : pos + 2]
    return tokens[:, 1:]


class StepScorer(Protocol):
    """What beam search asks of a scorer: per row, the candidates for the next token and their
    scores, then which (row, candidate) pairs the beam goes on with."""

    def score(self, logits: Tensor, count: int) -> tuple[Tensor, Tensor]: ...

    def advance(self, rows: Tensor, columns: Tensor) -> None: ...


class AttentionScorer:
    """The decoder's own log probabilities, for networks that decode without their CTC head."""

    def score(self, logits: Tensor, count: int) -> tuple[Tensor, Tensor]:
        top = logits.double().log_softmax(-1).topk(min(count, logits.shape[-1]), dim=-1)
        return top.indices, top.values

    def advance(self, rows: Tensor, columns: Tensor) -> None:
        """Nothing to keep: the decoder's state is its kv cache."""


@dataclass(frozen=True)
class BeamOptions:
    """Beam width, the language model and its weight, and the length normalisation: a
    finished hypothesis is ranked by its score over its length (end token included) to the
    power `length_norm` (0: the raw sum, which favours short readings; 1: the mean). The CTC
    head's search has no use for it (`text_recognizer.ctc_search`)."""

    width: int = 5
    lm: LanguageModelScorer | None = None
    lm_weight: float = 0.0
    length_norm: float = 1.0

    def __post_init__(self) -> None:
        """The one check of a beam width, wherever it comes from: options never hold a bad
        one, so no decoder checks again."""
        if self.width < 1:
            raise InferenceError("--beam", f"must be at least 1, got {self.width}")


def step_scorer(
    ctc_log_probs: Tensor | None, weight: float, blank: int, end_index: int
) -> StepScorer:
    """Beam search's scores: the decoder's alone, or jointly with the CTC head (as `chooser`)."""
    if ctc_log_probs is None or weight == 0:
        return AttentionScorer()
    return CTCPrefixScorer(ctc_log_probs, blank, end_index, weight)


def _step_scorer(network: ConvTransformer, ctc_log_probs: Tensor | None) -> StepScorer:
    return step_scorer(
        ctc_log_probs, network.ctc_decode_weight, network.pad_index, network.end_index
    )


@torch.inference_mode()
def beam_decode(
    network: ConvTransformer,
    images: Tensor,
    options: BeamOptions,
    max_length: int | None = None,
) -> Tensor:
    """Tokens (b, l) after the start token: the best of `options.width` hypotheses per image,
    padded after its end. Each image's hypotheses are rows of one batch through the cached
    `Decoder.step`; the cache and the CTC state follow the beam by row index. Width 1 reads
    exactly what `greedy_decode` reads."""
    memory, ctc_log_probs, setup = _beam_inputs(network, images, options.width)
    decoder = network.decoder
    max_length = max_length or network.max_output_length
    decoder.setup_cache(memory, max_length, rows_per_image=options.width)
    try:
        return beam_loop(
            lambda tokens, pos: decoder.step(tokens[:, pos : pos + 1], pos)[:, -1],
            decoder.reorder_cache,
            setup,
            max_length,
            _step_scorer(network, ctc_log_probs),
            options,
        )
    finally:
        decoder.clear_cache()


@torch.inference_mode()
def beam_decode_reference(
    network: ConvTransformer,
    images: Tensor,
    options: BeamOptions,
    max_length: int | None = None,
) -> Tensor:
    """`beam_decode` recomputing each hypothesis's prefix every step: the reference for tests."""
    memory, ctc_log_probs, setup = _beam_inputs(network, images, options.width)
    memory = memory.repeat_interleave(options.width, 0)
    return beam_loop(
        lambda tokens, pos: network.decoder(tokens[:, : pos + 1], memory)[:, -1],
        lambda rows: None,
        setup,
        max_length or network.max_output_length,
        _step_scorer(network, ctc_log_probs),
        options,
    )


def _beam_inputs(
    network: ConvTransformer, images: Tensor, width: int
) -> tuple[Tensor, Tensor | None, LoopSetup]:
    """The memory, once per image, and the CTC log probabilities with each image's row
    repeated `width` times (one per hypothesis)."""
    memory, ctc_log_probs = network.encode_for_decoding(images)
    setup = _setup(network, memory)
    if ctc_log_probs is not None:
        ctc_log_probs = ctc_log_probs.repeat_interleave(width, 0)
    return memory, ctc_log_probs, setup


def beam_loop(
    next_logits: Callable[[Tensor, int], Tensor],
    reorder: Callable[[Tensor], None],
    setup: LoopSetup,
    max_length: int,
    scorer: StepScorer,
    options: BeamOptions,
) -> Tensor:
    """Beam search over `setup.batch` images of `options.width` rows each: `next_logits` scores
    every row's next token, `reorder(rows)` moves the decoder's state with the beam.

    Each step ranks every row's candidates by the hypothesis's score plus the step's (the
    scorer's, plus the weighted language model's); the best `width` that do not end go on, and
    any that end among the best `width` are finished. An image is done once it has `width`
    finished hypotheses and the `width`-th best of them, by normalised score, is at least the
    best live hypothesis normalised at its current length (step scores are log probabilities,
    so a hypothesis only loses score as it grows); it reads as its best finished hypothesis.
    """
    b, k = setup.batch, options.width
    rows = b * k
    end = setup.end_index
    tokens = torch.full((rows, max_length + 1), setup.pad_index, dtype=torch.long)
    tokens = tokens.to(setup.device)
    tokens[:, 0] = setup.start_index
    # One live hypothesis per image at first, so the beam does not hold k copies of it.
    scores = torch.full((b, k), float("-inf"), dtype=torch.float64, device=setup.device)
    scores[:, 0] = 0.0
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    first_row = torch.arange(b, device=setup.device).unsqueeze(1) * k

    def finish(image: int, score: float, length: int, text: list[int]) -> None:
        if math.isfinite(score):
            finished[image].append((score / length**options.length_norm, text))

    for pos in range(max_length):
        candidates, step = scorer.score(next_logits(tokens, pos), k + 1)
        step = fused(step, options.lm, options.lm_weight, tokens[:, : pos + 1], candidates)
        c = candidates.shape[1]
        total = (scores.view(rows, 1) + step).view(b, k * c)
        top_scores, top = total.topk(min(2 * k, k * c), dim=1)
        hyp, column = top // c, top % c
        token = candidates.view(b, k * c).gather(1, top)
        is_end = token == end
        for image, (ends, values, hyps) in enumerate(
            zip(is_end[:, :k].tolist(), top_scores.tolist(), hyp.tolist(), strict=True)
        ):
            if done[image]:
                continue
            for rank, ended in enumerate(ends):
                if ended:
                    row = image * k + hyps[rank]
                    text = [*tokens[row, 1 : pos + 1].tolist(), end]
                    finish(image, values[rank], pos + 1, text)
        # The best k that go on: those not ending, in rank order (each row ends at most once,
        # so 2k candidates hold at least k).
        ranks = torch.arange(top.shape[1], device=top.device)
        order = (is_end.long() * top.shape[1] + ranks).argsort(1)[:, :k]
        source = (first_row + hyp.gather(1, order)).view(rows)
        scores = top_scores.gather(1, order)
        scorer.advance(source, column.gather(1, order).view(rows))
        tokens = tokens[source]
        tokens[:, pos + 1] = token.gather(1, order).view(rows)
        if pos == max_length - 1:
            for image, values in enumerate(scores.tolist()):
                for rank, value in enumerate(values):
                    if not done[image]:
                        text = tokens[image * k + rank, 1:].tolist()
                        finish(image, value, max_length, text)
            break
        for image, live in enumerate(scores.max(1).values.tolist()):
            norms = sorted((norm for norm, _ in finished[image]), reverse=True)
            if len(norms) >= k and norms[k - 1] >= live / (pos + 1) ** options.length_norm:
                done[image] = True
        if all(done):
            break
        reorder(source)
    best = [
        max(read, key=lambda item: item[0])[1] if read else tokens[image * k, 1:].tolist()
        for image, read in enumerate(finished)
    ]
    out = torch.full(
        (b, max(map(len, best))), setup.pad_index, dtype=torch.long, device=setup.device
    )
    for image, text in enumerate(best):
        out[image, : len(text)] = torch.tensor(text, dtype=torch.long)
    return out


def searched(beam: BeamOptions | None) -> BeamOptions | None:
    """The one rule for greedy against beam search: None (greedy decoding, or the CTC head's
    best path) for width 1 without a language model, where the attention decoder's search reads
    exactly what greedy reads, only slower; the beam otherwise."""
    if beam is None or (beam.width == 1 and (beam.lm is None or not beam.lm_weight)):
        return None
    return beam


def search_name(beam: BeamOptions | None) -> str:
    """How readings are searched, as reports and the command line say it."""
    options = searched(beam)
    if options is None:
        return "greedy"
    fused = options.lm is not None and options.lm_weight
    return f"beam {options.width}" + (f" + LM at weight {options.lm_weight}" if fused else "")


def check_decoder(decoder: str, has_ctc_head: bool, source: object) -> None:
    """Refuse a decoder that is not one of `DECODERS`, or `ctc` for a model with no CTC head
    (`source` names the model)."""
    if decoder not in DECODERS:
        raise InferenceError("--decoder", f"unknown {decoder!r}; choose {' or '.join(DECODERS)}")
    if decoder == "ctc" and not has_ctc_head:
        raise CheckpointError(
            source, "has no CTC head to read with --decoder ctc; read it with --decoder joint"
        )


@torch.inference_mode()
def decode_images(
    network: ConvTransformer,
    images: Tensor,
    decoder: str = "joint",
    beam: BeamOptions | None = None,
    max_length: int | None = None,
) -> Tensor:
    """Tokens (b, l) after the start token, read by `decoder`: greedy without `beam`, else beam
    search (the caller chooses, with `searched`). Call on a network in eval mode."""
    if decoder == "ctc":
        log_probs = network.ctc_log_probs(images)
        setup = LoopSetup(
            len(images), images.device, network.start_index, network.end_index, network.pad_index
        )
        return ctc_decode(log_probs, setup, max_length or network.max_output_length, beam)
    if beam is None:
        return greedy_decode(network, images, max_length)
    return beam_decode(network, images, beam, max_length)


def ctc_decode(
    log_probs: Tensor, setup: LoopSetup, max_length: int, beam: BeamOptions | None = None
) -> Tensor:
    """Tokens (b, l) after the start token read by a CTC head alone from its log probabilities
    (b, T, V): the best path without `beam`, else the prefix beam search of `beam.width` with
    its language model."""
    blank, start, end = setup.pad_index, setup.start_index, setup.end_index
    if beam is None:
        return best_path(log_probs, blank, start, end, max_length)
    return prefix_beam_search(
        log_probs, blank, start, end, max_length, beam.width, beam.lm, beam.lm_weight
    )
