"""Lines of text: English sentences (`corpus`) mixed with word-frequency lines.

Sentences teach the decoder the language people write. The word-frequency lines (`wordfreq`)
carry what sentences rarely do: words at their real frequencies (flattened a little, so rarer
words still appear), with capitals, numbers and punctuation mixed in so that every charset
character shows up. Line lengths follow IAM lines: mostly 20-60 characters, up to about 80.
"""

from __future__ import annotations

import string
from functools import cache

import numpy as np
import wordfreq

from text_recognizer.data.synthetic import corpus
from text_recognizer.metadata.charset import CHARSET

VOCABULARY_SIZE = 25_000
FREQUENCY_EXPONENT = 0.75  # < 1 flattens Zipf so the tail is not starved
_WORD_CHARS = set(string.ascii_letters + "'")
# Slurs and profanity that a web-derived frequency list carries; kept out of rendered samples.
_BLOCKLIST = frozenset(
    [
        "fuck",
        "fucking",
        "fucked",
        "fucker",
        "shit",
        "shitty",
        "bitch",
        "bitches",
        "asshole",
        "cunt",
        "dick",
        "pussy",
        "nigga",
        "nigger",
        "fag",
        "faggot",
        "retard",
        "whore",
        "slut",
        "cock",
        "porn",
    ]
)


@cache
def vocabulary() -> tuple[tuple[str, ...], np.ndarray]:
    """English words drawable with the charset, and their cumulative sampling probabilities."""
    words = [
        w
        for w in wordfreq.top_n_list("en", VOCABULARY_SIZE)
        if set(w) <= _WORD_CHARS and w.strip("'") == w and w not in _BLOCKLIST
    ]
    weights = np.array([wordfreq.word_frequency(w, "en") for w in words]) ** FREQUENCY_EXPONENT
    words = [w.capitalize() if w == "i" or w.startswith("i'") else w for w in words]
    return tuple(words), np.cumsum(weights / weights.sum())


def _number(rng: np.random.Generator) -> str:
    n = int(rng.integers(0, 10_000))
    forms = (
        str(n % 100),
        str(n),
        str(1800 + n % 230),
        f"{n % 24}:{n % 60:02d}",
        f"{n % 100}.{n % 10}",
        f"#{n % 100}",
        f"{n % 10}+{n // 10 % 10}",
        f"{n % 10}*{n // 10 % 10}",
        f"{n % 10}/{n // 10 % 10 + 1}",
        f"{n % 50}-{n % 50 + 10}",
    )
    return forms[int(rng.integers(len(forms)))]


def _word(rng: np.random.Generator, sentence_start: bool) -> str:
    words, cumulative = vocabulary()
    word = words[min(int(np.searchsorted(cumulative, rng.random())), len(words) - 1)]
    roll = rng.random()
    if sentence_start or roll < 0.08:
        word = word[0].upper() + word[1:]
    elif roll < 0.09:
        word = word.upper()
    return word


def sample_length(rng: np.random.Generator, max_length: int) -> int:
    """A target line length shaped like IAM lines, with some short lines mixed in."""
    if rng.random() < 0.2:
        return int(rng.integers(4, 30))
    return int(np.clip(rng.normal(42, 14), 4, max_length))


def sample_line(
    rng: np.random.Generator, max_length: int = 80, sentences: float = 0.0, heldout: bool = False
) -> str:
    """One line of at most `max_length` characters: with probability `sentences` cut from the
    corpus (its held-out addresses for validation and test), else prose-like word salad."""
    if sentences and rng.random() < sentences:
        return corpus.sample_line(rng, sample_length(rng, max_length), heldout)
    target = sample_length(rng, max_length)
    tokens: list[str] = []
    length = -1
    sentence_start = rng.random() < 0.5
    while True:
        roll = rng.random()
        if roll < 0.06:
            token = _number(rng)
        elif roll < 0.07:
            token = "&"
        else:
            token = _word(rng, sentence_start)
        sentence_start = False
        roll = rng.random()
        if roll < 0.07:
            token += ","
        elif roll < 0.13:
            token += "."
            sentence_start = True
        elif roll < 0.145:
            token += "?"
            sentence_start = True
        elif roll < 0.16:
            token += "!"
            sentence_start = True
        elif roll < 0.17:
            token += ";"
        elif roll < 0.18:
            token += ":"
        elif roll < 0.2:
            token = f'"{token}"'
        elif roll < 0.21:
            token = f"({token})"
        elif roll < 0.22:
            token += "-" + _word(rng, False)
        elif roll < 0.225:
            token = f"'{token}'"
        if length + 1 + len(token) > target and tokens:
            break
        tokens.append(token)
        length += 1 + len(token)
    line = " ".join(tokens)[:max_length]
    assert set(line) <= set(CHARSET)
    return line
