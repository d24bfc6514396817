"""Greedy decoding. The kv cache is the one decoding path; the prefix-recomputing variant exists
only as the reference that tests and benchmarks compare it with."""

from collections.abc import Callable

import torch
from torch import Tensor

from text_recognizer.network.conv_transformer import ConvTransformer


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
    memory = network.encode(images)
    max_length = max_length or network.max_output_length
    decoder.setup_cache(memory, max_length)
    try:
        return _greedy(
            network,
            memory,
            max_length,
            stop_at_end,
            lambda tokens, pos: decoder.step(tokens[:, pos : pos + 1], pos)[:, -1],
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
    memory = network.encode(images)
    return _greedy(
        network,
        memory,
        max_length or network.max_output_length,
        stop_at_end,
        lambda tokens, pos: network.decoder(tokens[:, : pos + 1], memory)[:, -1],
    )


def _greedy(
    network: ConvTransformer,
    memory: Tensor,
    max_length: int,
    stop_at_end: bool,
    next_logits: Callable[[Tensor, int], Tensor],
) -> Tensor:
    """The loop both decoders share; `next_logits(tokens, pos)` scores the token after `pos`."""
    batch = memory.shape[0]
    tokens = memory.new_full((batch, max_length + 1), network.pad_index, dtype=torch.long)
    tokens[:, 0] = network.start_index
    ended = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    for pos in range(max_length):
        next_token = next_logits(tokens, pos).argmax(-1).masked_fill(ended, network.pad_index)
        tokens[:, pos + 1] = next_token
        ended |= next_token == network.end_index
        if stop_at_end and bool(ended.all()):
            return tokens[:, 1 : pos + 2]
    return tokens[:, 1:]
