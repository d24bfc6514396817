"""The datamodules by config name, each with the values of its training config
(`training/conf/datamodule/<name>.yaml`).

`text-recognizer-data generate` and `text-recognizer evaluate --datamodule NAME` build them from
these, so what they build is exactly what a training run reads: there are no second defaults to
keep in sync with the yaml.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.document_lines import DocumentLines
from text_recognizer.data.emnist import EMNIST
from text_recognizer.data.emnist_lines import EMNISTLines
from text_recognizer.data.iam_lines import IAMLines
from text_recognizer.data.iam_paragraphs import (
    IAMExtendedParagraphs,
    IAMParagraphs,
    IAMSyntheticParagraphs,
)
from text_recognizer.data.synthetic_lines import SyntheticLines
from text_recognizer.data.synthetic_paragraphs import SyntheticParagraphs
from text_recognizer.errors import ConfigError, MissingDataError

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "conf" / "datamodule"
# In the order `generate` builds them: later ones read earlier ones' files.
CLASSES: dict[str, type[BaseDataModule]] = {
    "synthetic_lines": SyntheticLines,
    "synthetic_paragraphs": SyntheticParagraphs,
    "emnist": EMNIST,
    "emnist_lines": EMNISTLines,
    "iam_lines": IAMLines,
    "iam_paragraphs": IAMParagraphs,
    "iam_synthetic_paragraphs": IAMSyntheticParagraphs,
    "iam_extended_paragraphs": IAMExtendedParagraphs,
    "documents": DocumentLines,
}
OWN = ("documents",)
"""Built from the user's own files, named on the command line: `generate` builds it only when
asked to."""


def configured(name: str, overrides: Sequence[str] = ()) -> functools.partial[BaseDataModule]:
    """`CLASSES[name]` with its training config's values bound (call it to build), changed by
    `overrides` as main.py takes them (`datamodule.sources=[pages/]`)."""
    path = CONFIGS / f"{name}.yaml"
    if not path.is_file():
        raise MissingDataError(
            f"{path} is missing: datamodules are built from the training configs of a clone of "
            "this repository"
        )
    try:
        config = OmegaConf.load(path)
        changes = OmegaConf.from_dotlist([o.removeprefix("datamodule.") for o in overrides])
        if unknown := sorted(set(changes) - set(config)):
            raise ConfigError(f"{path} has no key {', '.join(unknown)}")
        values = OmegaConf.to_container(OmegaConf.merge(config, changes), resolve=True)
    except (OmegaConfBaseException, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None
    cls = CLASSES[name]
    if not isinstance(values, dict) or values.get("_target_") != f"{cls.__module__}.{cls.__name__}":
        raise ConfigError(
            f"{path}: expected a mapping with _target_ {cls.__module__}.{cls.__name__}"
        )
    return functools.partial(cls, **{str(k): v for k, v in values.items() if k != "_target_"})


class _Configured(Mapping[str, functools.partial[BaseDataModule]]):
    """`configured` by name, read when asked for: a missing yaml fails the command that needs
    it, not every import."""

    def __getitem__(self, name: str) -> functools.partial[BaseDataModule]:
        if name not in CLASSES:
            raise KeyError(name)
        return configured(name)

    def __iter__(self) -> Iterator[str]:
        return iter(CLASSES)

    def __len__(self) -> int:
        return len(CLASSES)


DATASETS: Mapping[str, Callable[[], BaseDataModule]] = _Configured()
