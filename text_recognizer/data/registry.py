"""The datamodules by config name, each with the values of its training config
(`text_recognizer/conf/datamodule/<name>.yaml`, the `datamodule` group that main.py composes).

`text-recognizer-data generate` and `text-recognizer evaluate --datamodule NAME` build them from
these, so what they build is exactly what a training run reads. The yaml is the one home of
these values: the classes take each as a required keyword, with no second default to drift.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from text_recognizer.data.base import BaseDataModule
from text_recognizer.data.documents.lines import DocumentLines
from text_recognizer.data.emnist.characters import EMNIST
from text_recognizer.data.emnist.lines import EMNISTLines
from text_recognizer.data.iam.lines import IAMLines
from text_recognizer.data.iam.paragraphs import IAMParagraphs
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.data.synthetic.paragraphs import SyntheticParagraphs
from text_recognizer.errors import ConfigError

# Package data, so that an installed wheel builds what a clone does; training/conf/config.yaml
# puts the folder above on Hydra's search path (`pkg://text_recognizer.conf`).
CONFIGS = Path(__file__).resolve().parents[1] / "conf" / "datamodule"
# In the order `generate` builds them: later ones read earlier ones' files.
CLASSES: dict[str, type[BaseDataModule]] = {
    "synthetic_lines": SyntheticLines,
    "synthetic_paragraphs": SyntheticParagraphs,
    "emnist": EMNIST,
    "emnist_lines": EMNISTLines,
    "iam_lines": IAMLines,
    "iam_paragraphs": IAMParagraphs,
    "iam_synthetic_paragraphs": IAMParagraphs,
    "iam_extended_paragraphs": IAMParagraphs,
    "documents": DocumentLines,
}
OWN = ("documents",)
"""Built from the user's own files, named on the command line: `generate` builds it only when
asked to."""


def values(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The training config of datamodule `name`, composed as Hydra composes it and resolved,
    changed by `overrides` as main.py takes them (`datamodule.sources=[pages/]`)."""
    path = CONFIGS / f"{name}.yaml"
    try:
        config = _compose(path)
        changes = OmegaConf.from_dotlist([o.removeprefix("datamodule.") for o in overrides])
        if unknown := sorted(set(changes) - set(config)):
            raise ConfigError(f"{path} has no key {', '.join(unknown)}")
        found = OmegaConf.to_container(OmegaConf.merge(config, changes), resolve=True)
    except (OmegaConfBaseException, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None
    cls = CLASSES[name]
    if not isinstance(found, dict) or found.get("_target_") != _target(cls):
        raise ConfigError(f"{path}: expected a mapping with _target_ {_target(cls)}")
    return {str(k): v for k, v in found.items()}


def _compose(path: Path) -> DictConfig:
    """The yaml with its defaults list applied, as Hydra applies it: each entry is another
    datamodule config (`iam_paragraphs`, `shape/lines@_here_`), merged in or placed under its
    package (`synthetic_lines@lines`), and `_self_` (by default last) marks where the file's own
    keys go."""
    config = OmegaConf.load(path)
    if not isinstance(config, DictConfig):
        raise ConfigError(f"{path}: not a mapping")
    defaults = list(config.pop("defaults", []))
    if "_self_" not in defaults:
        defaults.append("_self_")
    merged = OmegaConf.merge(*(config if e == "_self_" else _placed(path, e) for e in defaults))
    assert isinstance(merged, DictConfig)
    return merged


def _placed(path: Path, entry: object) -> DictConfig:
    """Defaults entry `entry` of `path`: that config, under its package."""
    if not isinstance(entry, str):
        raise ConfigError(f"{path}: defaults entry {entry!r}: only config names are read")
    name, _, package = entry.partition("@")
    part: Any = _compose(path.parent / f"{name}.yaml")
    package = package or name.rpartition("/")[0].replace("/", ".")  # Hydra's: the folder's
    for key in reversed([k for k in package.split(".") if k and package != "_here_"]):
        part = {key: part}
    return OmegaConf.create(part)


def _target(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _built(value: Any) -> Any:
    """A nested datamodule config (`lines` of the synthetic paragraphs) as its datamodule."""
    if not isinstance(value, dict) or "_target_" not in value:
        return value
    classes = {_target(cls): cls for cls in CLASSES.values()}
    if value["_target_"] not in classes:
        raise ConfigError(f"{value['_target_']} is not a datamodule of this package")
    cls = classes[value["_target_"]]
    try:
        return cls(**{k: _built(v) for k, v in value.items() if k != "_target_"})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{value['_target_']}: {error}") from None


def configured(name: str, overrides: Sequence[str] = ()) -> functools.partial[BaseDataModule]:
    """`CLASSES[name]` with its training config's values bound (call it to build; keywords
    given then replace the config's), changed by `overrides` (see `values`)."""
    found = values(name, overrides)
    return functools.partial(
        CLASSES[name], **{k: _built(v) for k, v in found.items() if k != "_target_"}
    )


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
