"""Load a network from a training checkpoint without trusting the file with code execution."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from text_recognizer.errors import CheckpointError
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.spec import CHECKPOINT_KEY, InferenceSpec

PREFIX = "network."  # LitTransformer holds the network as `self.network`


def load_checkpoint(path: str | Path) -> tuple[ConvTransformer, InferenceSpec]:
    """The network (eval mode, on the CPU) with its weights, and the checkpoint's spec."""
    path = Path(path)
    checkpoint = _load(path)
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            path,
            f"no {CHECKPOINT_KEY!r} entry: not a checkpoint written by this package's training "
            "(main.py), or written before it recorded what inference needs",
        )
    spec = InferenceSpec.from_dict(checkpoint[CHECKPOINT_KEY], path)
    network = spec.build_network(path)
    vocabulary = len(spec.tokenizer())
    if network.num_tokens != vocabulary:
        raise CheckpointError(
            path,
            f"vocabulary size mismatch: the tokenizer has {vocabulary} tokens, the network "
            f"{network.num_tokens}",
        )
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(path, "no state_dict")
    weights = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    load_weights(network, weights, path)
    return network.eval(), spec


def _load(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsafe:
            raise CheckpointError(
                path,
                f"refused: unpickling it would call {unsafe.group(1)}; checkpoints are loaded "
                "with weights_only=True, which allows tensors and plain data only",
            ) from error
        raise CheckpointError(path, "not a PyTorch checkpoint (unreadable pickle)") from error
    except (RuntimeError, EOFError, KeyError, OSError, ValueError) as error:
        detail = str(error).split(". ")[0] or type(error).__name__
        raise CheckpointError(
            path, f"not a PyTorch checkpoint, or corrupt or truncated ({detail})"
        ) from error


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
