"""Greedy decoding. The kv cache is the one decoding path; the prefix-recomputing variant exists
only as the reference that tests and benchmarks compare it with. Networks with a
`ctc_decode_weight` choose each token jointly with their CTC head (`CTCPrefixScorer`)."""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from text_recognizer.ctc_prefix import CTCPrefixScorer
from text_recognizer.network.conv_transformer import ConvTransformer

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
