"""Characters <-> token indices for every dataset in the repo, and charsets built from data.

One vocabulary serves lines and paragraphs (the newline token joins lines), so a model trained on
one can be fine-tuned on another without remapping its output layer. A user's own documents bring
their own characters (a long s, é, ß, §, ½): their charset is built from the training lines,
after an optional Unicode normalisation and an explicit table that maps or drops characters;
the tokenizer keeps both, so a checkpoint says how its labels were written.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from text_recognizer.metadata.charset import CHARSET, END, NEWLINE, PAD, SPECIAL_TOKENS, START


class OutOfCharsetError(ValueError):
    """Text holds a character the tokenizer cannot represent."""


NORMALIZATIONS = ("NFC", "NFD", "NFKC", "NFKD")


class Tokenizer:
    """Character-level tokenizer: specials first (pad is 0), then the charset in a fixed order.

    `normalization` (a Unicode form) and `mapping` (character -> replacement, "" to drop it) say
    how raw text becomes a label (`normalize`); `encode` itself takes labels only.
    """

    def __init__(
        self,
        charset: str = CHARSET,
        normalization: str | None = None,
        mapping: Mapping[str, str] | None = None,
    ) -> None:
        if len(set(charset)) != len(charset):
            raise ValueError("charset has repeated characters")
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)} or null, got "
                f"{normalization!r}"
            )
        mapping = dict(mapping or {})
        if bad := [k for k in mapping if not isinstance(k, str) or len(k) != 1]:
            raise ValueError(f"the mapping's keys must be single characters, got {bad!r}")
        if bad := [v for v in mapping.values() if not isinstance(v, str)]:
            raise ValueError(f"the mapping's values must be strings ('' drops), got {bad!r}")
        self.charset = charset
        self.normalization = normalization
        self.mapping = mapping
        self.tokens: tuple[str, ...] = (*SPECIAL_TOKENS, *charset)
        self._index = {token: i for i, token in enumerate(self.tokens)}
        self.pad_index = self._index[PAD]
        self.start_index = self._index[START]
        self.end_index = self._index[END]
        self.newline_index = self._index[NEWLINE]

    def __len__(self) -> int:
        return len(self.tokens)

    def params(self) -> dict[str, Any]:
        """Plain values that rebuild this tokenizer (`Tokenizer(**params)`)."""
        return {
            "charset": self.charset,
            "normalization": self.normalization,
            "mapping": dict(self.mapping),
        }

    def normalize(self, text: str) -> str:
        """Raw text as a label: `normalize_text` with this tokenizer's form and table."""
        return normalize_text(text, self.normalization, self.mapping)

    def encode(self, text: str, max_length: int | None = None) -> torch.Tensor:
        """Return `<s> text <e>` as indices, right-padded with `<p>` to `max_length` if given."""
        indices = [self.start_index]
        for position, char in enumerate(text):
            index = self._index.get(char)
            if index is None:
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
        return {c for c in text if c not in self._index}


def normalize_text(text: str, normalization: str | None, mapping: Mapping[str, str]) -> str:
    """`text` in the Unicode form `normalization` (if any), then each character the table names
    replaced (a replacement of "" drops it)."""
    if normalization is not None:
        text = unicodedata.normalize(normalization, text)  # type: ignore[arg-type]
    return "".join(mapping.get(c, c) for c in text) if mapping else text


def charset_of(
    texts: Iterable[str], min_count: int = 1, base: str = ""
) -> tuple[str, Counter[str]]:
    """`base`, then every other character of `texts` seen at least `min_count` times, by code
    point; and the counts of the characters left out as too rare."""
    counts = Counter("".join(texts))
    kept = sorted(c for c, n in counts.items() if n >= min_count and c not in base)
    rare = Counter({c: n for c, n in counts.items() if n < min_count and c not in base})
    return base + "".join(kept), rare
