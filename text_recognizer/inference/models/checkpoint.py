"""Load a network from a training checkpoint without trusting the file with code execution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from text_recognizer.errors import CheckpointError
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.spec import InferenceSpec, network_weights, read_checkpoint


def load_checkpoint(path: str | Path) -> tuple[ConvTransformer, InferenceSpec]:
    """The network (eval mode, on the CPU) with its weights, and the checkpoint's spec."""
    path = Path(path)
    checkpoint, spec = read_checkpoint(path)
    network = spec.build_network(path)
    vocabulary = len(spec.tokenizer())
    if network.num_tokens != vocabulary:
        raise CheckpointError(
            path,
            f"vocabulary size mismatch: the tokenizer has {vocabulary} tokens, the network "
            f"{network.num_tokens}",
        )
    load_weights(network, network_weights(checkpoint, path), path)
    return network.eval(), spec


def load_weights(network: torch.nn.Module, state: dict[str, Any], source: object) -> None:
    """Strict load that names what does not fit: a checkpoint of another network is refused."""
    own = network.state_dict()
    problems = []
    if missing := sorted(own.keys() - state.keys()):
        problems.append(f"missing {_some(missing)}")
    if unexpected := sorted(state.keys() - own.keys()):
        problems.append(f"unexpected {_some(unexpected)}")
    shapes = [
        f"{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
        for key in sorted(own.keys() & state.keys())
        if getattr(state[key], "shape", None) != own[key].shape
    ]
    if shapes:
        problems.append(f"shape mismatch (checkpoint vs network) {_some(shapes)}")
    if problems:
        raise CheckpointError(
            source,
            "its weights do not fit the network its config describes: " + "; ".join(problems),
        )
    network.load_state_dict(state)


def _some(items: list[str], count: int = 3) -> str:
    more = f" and {len(items) - count} more" if len(items) > count else ""
    return ", ".join(items[:count]) + more
