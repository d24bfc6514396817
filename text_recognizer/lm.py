"""A character n-gram language model, for beam search to weigh what text usually looks like.

Trained by counting (`text-recognizer lm train`), smoothed by interpolated Witten-Bell: an
n-gram's probability mixes its own relative frequency with the next lower order's, giving the
lower order the more weight the more different characters follow the context. A character
model needs nothing more refined (its vocabulary is a hundred symbols, its contexts are dense),
and Witten-Bell can be checked by counting by hand.

Stored in the ARPA text format (log10 probabilities and backoff weights), which other toolkits
read and write: for Witten-Bell the backoff weight of a context is exactly the mass it leaves
to the lower order, T / (c + T) (T the characters seen after it, c its count). ARPA separates
symbols by whitespace, so a space is written `<sp>` and a newline `<nl>`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from text_recognizer.errors import LanguageModelError
from text_recognizer.io import atomic_path
from text_recognizer.tokenizer import Tokenizer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPELLED = {" ": "<sp>", "\n": "<nl>", "\t": "<sp>"}
NEVER = -99.0  # ARPA's log10 probability of the start symbol, which is never predicted
LM_WEIGHT = 0.5
"""The language model's share of a beam score by default (`--lm-weight`): the best of 0.15, 0.3,
0.5 and 0.8 for the default line model on 200 validation lines (beam 5, the default LM)."""
HOW = "build one with `text-recognizer lm train CORPUS.txt --order 6 --out FILE.arpa`"


def symbol(char: str) -> str:
    return SPELLED.get(char, char)


def symbols(line: str) -> list[str]:
    """A line as the model's symbols, between the start and end symbols."""
    return [BOS, *(symbol(c) for c in line), EOS]


class NgramModel(NamedTuple):
    """log10 probabilities of n-grams (tuples of symbols) and log10 backoff weights of the
    contexts that have one."""

    order: int
    probs: dict[tuple[str, ...], float]
    backoffs: dict[tuple[str, ...], float]

    def log10_prob(self, context: tuple[str, ...], word: str) -> float:
        """log10 P(word | context), backing off to shorter contexts as ARPA defines."""
        context = context[-(self.order - 1) :] if self.order > 1 else ()
        total = 0.0
        while True:
            if (found := self.probs.get((*context, word))) is not None:
                return total + found
            if not context:
                return total + self.probs.get((UNK,), NEVER)
            total += self.backoffs.get(context, 0.0)
            context = context[1:]

    def score(self, line: str) -> float:
        """log10 P(line), its end included."""
        sequence = symbols(line)
        return sum(
            self.log10_prob(tuple(sequence[:i]), sequence[i]) for i in range(1, len(sequence))
        )


def train(lines: Iterable[str], order: int) -> NgramModel:
    """Interpolated Witten-Bell estimates from the n-gram counts of `lines` (a sentence each)."""
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for line in lines:
        sequence = symbols(line)
        for i in range(1, len(sequence)):
            for n in range(1, min(order, i + 1) + 1):
                counts[n][tuple(sequence[i - n + 1 : i + 1])] += 1
    if not counts[1]:
        raise ValueError("the corpus holds no text")
    vocabulary = sorted({gram[0] for gram in counts[1]} | {UNK})
    total, types = sum(counts[1].values()), len(counts[1])
    uniform = 1.0 / len(vocabulary)
    probs: dict[tuple[str, ...], float] = {}
    for w in vocabulary:
        probs[(w,)] = math.log10((counts[1][(w,)] + types * uniform) / (total + types))
    probs[(BOS,)] = NEVER
    backoffs: dict[tuple[str, ...], float] = {}
    for n in range(2, order + 1):
        seen: dict[tuple[str, ...], int] = defaultdict(int)
        following: dict[tuple[str, ...], int] = defaultdict(int)
        for gram, count in counts[n].items():
            seen[gram[:-1]] += count
            following[gram[:-1]] += 1
        below = NgramModel(n - 1, probs, dict(backoffs))  # the orders estimated so far
        current = {}
        for gram, count in counts[n].items():
            context, mass = gram[:-1], following[gram[:-1]]
            backed = 10 ** below.log10_prob(context[1:], gram[-1])
            current[gram] = math.log10((count + mass * backed) / (seen[context] + mass))
        for context, count in seen.items():
            backoffs[context] = math.log10(following[context] / (count + following[context]))
        probs.update(current)
    return NgramModel(order, probs, backoffs)


def read_corpus(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, one sentence each, blank ones left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise LanguageModelError(path, f"not UTF-8 text ({error})") from None
    return [line for line in lines if line.strip()]


def write_arpa(model: NgramModel, path: Path) -> Path:
    """The model as an ARPA file, written whole or not at all."""
    by_order: list[list[tuple[str, ...]]] = [[] for _ in range(model.order + 1)]
    for gram in model.probs:
        by_order[len(gram)].append(gram)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for n in range(1, model.order + 1):
            out.write(f"ngram {n}={len(by_order[n])}\n")
        for n in range(1, model.order + 1):
            out.write(f"\n\\{n}-grams:\n")
            for gram in sorted(by_order[n]):
                backoff = model.backoffs.get(gram)
                tail = "" if backoff is None else f"\t{backoff:.6f}"
                out.write(f"{model.probs[gram]:.6f}\t{' '.join(gram)}{tail}\n")
        out.write("\n\\end\\\n")
    return path


def read_arpa(path: str | Path) -> NgramModel:
    """An ARPA file as a model; a missing or unreadable one is a `LanguageModelError`."""
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(path, f"no such language model file; {HOW}")
    probs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    order, declared = 0, dict[int, int]()
    try:
        with path.open(encoding="utf-8") as lines:
            if next(lines, "").strip() != "\\data\\":
                raise ValueError("it does not start with \\data\\")
            section = 0
            for number, raw in enumerate(lines, 2):
                line = raw.strip()
                if not line:
                    continue
                if line.startswith("ngram ") and not section:
                    n, count = line[6:].split("=")
                    declared[int(n)] = int(count)
                elif line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:].split("-")[0])
                    order = max(order, section)
                elif line == "\\end\\":
                    break
                elif section:
                    fields = line.split("\t") if "\t" in line else line.split()
                    if "\t" in line:
                        gram = tuple(fields[1].split())
                        backoff = fields[2] if len(fields) > 2 else None
                    else:
                        gram = tuple(fields[1 : 1 + section])
                        backoff = fields[1 + section] if len(fields) > 1 + section else None
                    if len(gram) != section:
                        raise ValueError(f"line {number} is not a {section}-gram")
                    probs[gram] = float(fields[0])
                    if backoff is not None:
                        backoffs[gram] = float(backoff)
                else:
                    raise ValueError(f"line {number} is neither a header nor an n-gram")
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise LanguageModelError(path, f"not an ARPA language model ({error}); {HOW}") from None
    held = Counter(len(gram) for gram in probs)
    if not probs or declared != dict(held):
        problem = (
            "no n-grams" if not probs else f"it declares {declared} n-grams, holds {dict(held)}"
        )
        raise LanguageModelError(path, f"not an ARPA language model ({problem}); {HOW}")
    return NgramModel(order, probs, backoffs)


class LanguageModelScorer(Protocol):
    """What beam search asks of a language model over token indices (`TokenLanguageModel`)."""

    def score(self, tokens: Tensor, candidates: Tensor) -> Tensor:
        """Natural log probabilities (rows, c) of each candidate after its row's tokens
        (rows, t), which begin with the start token."""
        ...


def fused(
    scores: Tensor,
    lm: LanguageModelScorer | None,
    weight: float,
    tokens: Tensor,
    candidates: Tensor,
) -> Tensor:
    """Shallow fusion, as every beam search weighs its candidates: `scores` (rows, c) of each
    row's candidate next tokens plus `weight` times the model's log probability of each after
    the row's `tokens` (as they are without a model or a weight)."""
    if lm is None or not weight:
        return scores
    return scores + weight * lm.score(tokens, candidates).to(scores)


class TokenLanguageModel:
    """The model over a tokenizer's indices, for beam search (`LanguageModelScorer`):
    natural log probabilities, the end token as the end symbol, padding and the start token
    never (they are not text)."""

    def __init__(self, model: NgramModel, tokenizer: Tokenizer) -> None:
        self.model = model
        self.tokens: list[str | None] = [symbol(t) for t in tokenizer.tokens]
        for special in (tokenizer.pad_index, tokenizer.start_index):
            self.tokens[special] = None
        self.tokens[tokenizer.end_index] = EOS
        self.tokens[tokenizer.newline_index] = symbol("\n")
        self.start_index = tokenizer.start_index
        self.memo: dict[tuple[tuple[str, ...], int], float] = {}

    def score(self, tokens: Tensor, candidates: Tensor) -> Tensor:
        keep = self.model.order - 1
        histories = tokens[:, tokens.shape[1] - keep :].tolist() if keep else [[]] * len(tokens)
        scores = []
        for history, row in zip(histories, candidates.tolist(), strict=True):
            context = tuple(
                BOS if t == self.start_index else self.tokens[t] or UNK for t in history
            )
            scores.append([self._log_prob(context, token) for token in row])
        return torch.tensor(scores, dtype=torch.float64, device=candidates.device)

    def _log_prob(self, context: tuple[str, ...], token: int) -> float:
        key = (context, token)
        if (found := self.memo.get(key)) is None:
            word = self.tokens[token]
            found = (
                -math.inf if word is None else self.model.log10_prob(context, word) * math.log(10)
            )
            if len(self.memo) < 1_000_000:
                self.memo[key] = found
        return found


def load_token_lm(path: str | Path, tokenizer: Tokenizer) -> TokenLanguageModel:
    return TokenLanguageModel(read_arpa(path), tokenizer)
