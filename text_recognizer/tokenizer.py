"""Characters <-> token indices for every dataset in the repo.

One vocabulary serves lines and paragraphs (the newline token joins lines), so a model trained on
one can be fine-tuned on another without remapping its output layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from text_recognizer.metadata.charset import CHARSET, END, NEWLINE, PAD, SPECIAL_TOKENS, START


class OutOfCharsetError(ValueError):
    """Text holds a character the tokenizer cannot represent."""


class Tokenizer:
    """Character-level tokenizer: specials first (pad is 0), then the charset in a fixed order."""

    def __init__(self, charset: str = CHARSET) -> None:
        if len(set(charset)) != len(charset):
            raise ValueError("charset has repeated characters")
        self.charset = charset
        self.tokens: tuple[str, ...] = (*SPECIAL_TOKENS, *charset)
        self._index = {token: i for i, token in enumerate(self.tokens)}
        self.pad_index = self._index[PAD]
        self.start_index = self._index[START]
        self.end_index = self._index[END]
        self.newline_index = self._index[NEWLINE]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_length: int | None = None) -> torch.Tensor:
        """Return `<s> text <e>` as indices, right-padded with `<p>` to `max_length` if given."""
        indices = [self.start_index]
        for position, char in enumerate(text):
            index = self._index.get(char)
            if index is None or index == self.pad_index:
                raise OutOfCharsetError(
                    f"character {char!r} at position {position} of {text[:40]!r} is not in the "
                    "charset"
                )
            indices.append(index)
        indices.append(self.end_index)
        if max_length is not None:
            if len(indices) > max_length:
                raise ValueError(
                    f"text of {len(text)} characters needs {len(indices)} tokens, more than "
                    f"max_length={max_length}"
                )
            indices += [self.pad_index] * (max_length - len(indices))
        return torch.tensor(indices, dtype=torch.long)

    def decode(self, indices: Iterable[int] | torch.Tensor) -> str:
        """Text up to the first end token; start and pad tokens are dropped."""
        if isinstance(indices, torch.Tensor):
            indices = indices.tolist()
        chars = []
        for index in indices:
            if index == self.end_index:
                break
            if index in (self.start_index, self.pad_index):
                continue
            chars.append(self.tokens[index])
        return "".join(chars)

    def decode_batch(self, batch: torch.Tensor | Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(row) for row in batch]

    def unsupported(self, text: str) -> set[str]:
        """Characters of `text` that `encode` would reject."""
        return {c for c in text if c not in self._index or c == PAD}
