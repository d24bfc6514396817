"""Start a network from another checkpoint's weights: fine-tuning on a new charset, or reusing
the part of another network that fits (a line encoder in a paragraph reader).

The checkpoint is read as `predict` reads one (`weights_only`, its spec validated). Every tensor
whose name and shape match is copied. The tensors whose rows are tokens (`TOKEN_ROWS`) are copied
row by row, by character: characters both charsets have keep their rows wherever the new
tokenizer puts them, characters new to it keep the rows the network was initialised with, and
characters it no longer has are left behind; the special tokens are the same in every tokenizer.
Whatever does not fit keeps its initialisation and is named in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from text_recognizer.errors import ConfigError
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.spec import network_weights, read_checkpoint
from text_recognizer.tokenizer import Tokenizer


@dataclass(frozen=True)
class Transfer:
    """What `transfer_weights` took from the checkpoint, and what it left."""

    source: Path
    copied: tuple[str, ...]
    by_character: tuple[str, ...]
    fresh: tuple[str, ...]
    """This network's tensors the checkpoint has none of, or none of this shape."""
    unused: tuple[str, ...]
    """The checkpoint's tensors this network has no place for."""
    reused: str
    added: str
    dropped: str

    def summary(self) -> str:
        lines = [
            f"init_from {self.source}: {len(self.copied)} tensors copied, "
            f"{len(self.by_character)} moved row by row to the new charset",
            f"  characters: {len(self.reused)} reused, {len(self.added)} added "
            f"{self.added!r} (initialised afresh), {len(self.dropped)} dropped {self.dropped!r}",
        ]
        if self.fresh:
            lines.append(f"  left at their initialisation: {', '.join(self.fresh)}")
        if self.unused:
            lines.append(f"  in the checkpoint but not used: {', '.join(self.unused)}")
        return "\n".join(lines)


def transfer_weights(network: ConvTransformer, path: str | Path, tokenizer: Tokenizer) -> Transfer:
    """Load what fits of the checkpoint at `path` into `network`, whose tokenizer is
    `tokenizer`; refuse (naming the file) a checkpoint nothing of which fits."""
    path = Path(path)
    checkpoint, spec = read_checkpoint(path)
    theirs = network_weights(checkpoint, path)
    source = spec.tokenizer()
    ours, theirs_rows = _shared_rows(tokenizer, source)
    state = network.state_dict()
    copied, by_character, fresh = [], [], []
    for key, value in state.items():
        other = theirs.get(key)
        if other is None:
            fresh.append(key)
        elif key in network.TOKEN_ROWS and other.shape[1:] == value.shape[1:]:
            if other.shape[0] != len(source) or value.shape[0] != len(tokenizer):
                fresh.append(key)
                continue
            moved = value.clone()
            moved[ours] = other[theirs_rows].to(value.dtype)
            state[key] = moved
            by_character.append(key)
        elif other.shape == value.shape:
            state[key] = other.to(value.dtype)
            copied.append(key)
        else:
            fresh.append(key)
    if not copied and not by_character:
        raise ConfigError(f"model.init_from: nothing in {path} fits this network")
    network.load_state_dict(state)
    shared = set(tokenizer.charset) & set(source.charset)
    return Transfer(
        source=path,
        copied=tuple(copied),
        by_character=tuple(by_character),
        fresh=tuple(fresh),
        unused=tuple(sorted(theirs.keys() - state.keys())),
        reused="".join(c for c in tokenizer.charset if c in shared),
        added="".join(c for c in tokenizer.charset if c not in shared),
        dropped="".join(c for c in source.charset if c not in shared),
    )


def _shared_rows(ours: Tokenizer, theirs: Tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the tokens both tokenizers have, in ours and in theirs (specials included)."""
    index = {token: i for i, token in enumerate(theirs.tokens)}
    pairs = [(i, index[token]) for i, token in enumerate(ours.tokens) if token in index]
    return torch.tensor([i for i, _ in pairs]), torch.tensor([j for _, j in pairs])
