"""The default character language model's corpus (`text-recognizer lm train` without a text
file): lines drawn as the default training data draws its text, so that the model weighs the
text the recognizer learnt to read.

It lives with the data, not in `text_recognizer.lm`, which sits beside the data in the import
layers and may not import it: the share of sentence lines and the longest line are the default
datamodule's, read from their one home, `text_recognizer/conf/datamodule/synthetic_lines.yaml`.
"""

from __future__ import annotations

from pathlib import Path

from text_recognizer.data.paths import data_root

SYNTHETIC_LINES = 40_000  # the default language model's corpus: about 1.8M characters
SYNTHETIC_SEED = (14, 6)  # a stream of its own: the rendered datasets seed (seed, split, chunk)
ORDER = 6  # the default language model: characters of context + 1


def default_lm() -> Path:
    """Where `make generate` (`text-recognizer lm train --if-missing`) writes the default
    language model, and where `predict` and `evaluate` look for it."""
    return data_root() / "lm" / "synthetic.arpa"


def synthetic_corpus(lines: int) -> list[str]:
    """`lines` lines as the default datamodule draws its training text (`sample_line`, with its
    share of English sentences where the corpus is present), from a stream apart from any
    split's. Its imports wait for the call, so that the command line reads `SYNTHETIC_LINES`
    without loading every datamodule."""
    import numpy as np

    from text_recognizer.data.registry import configured
    from text_recognizer.data.synthetic.lines import SyntheticLines
    from text_recognizer.data.synthetic.text import sample_line

    config = SyntheticLines(**configured("synthetic_lines").keywords).config
    sentences = config.text_sentences()
    rng = np.random.default_rng(SYNTHETIC_SEED)
    return [sample_line(rng, config.max_text_length, sentences) for _ in range(lines)]
