"""The checkpoint format: what inference needs besides the weights, stored in every checkpoint
training writes (under `CHECKPOINT_KEY`), and the restricted builder that reads it back.

Plain data (strings, numbers, lists, dicts), so a checkpoint loads with `weights_only=True`, and
built back only into classes of this package: a checkpoint cannot name arbitrary code to run.
It sits below the model (which writes it) and inference (which reads it).

Format 2 records the stem's resize rule in the transform, and the network config no longer
carries `encoder_dim` or `decoder_dim` (the network reads them off its parts). A format 1
checkpoint is read as format 2: its rule is its datamodule's (pages: `shrink`, as they were
trained), else `height`. The tokenizer entry may also hold the Unicode normalisation and the
mapping table its labels were written with (a charset built from documents); without them,
text is taken as it is. A synthetic paragraphs datamodule recorded before its config composed
the synthetic lines' (its `line_*` keys) is read as the composed one it meant. A datamodule
recorded under the module it had before `text_recognizer.data` was organised by source is read
as the class it is now (`MOVED`); the IAM paragraph subclasses as `IAMParagraphs` with the
keywords they stood for.
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from text_recognizer.data.transforms import EvalTransform
from text_recognizer.errors import CheckpointError
from text_recognizer.metadata.charset import SPECIAL_TOKENS
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.tokenizer import Tokenizer

if TYPE_CHECKING:
    from text_recognizer.data.base import BaseDataModule

CHECKPOINT_KEY = "text_recognizer"
FORMAT_VERSION = 2
PACKAGE = "text_recognizer."
NETWORK_PREFIX = "network."  # LitTransformer holds the network as `self.network`
DATA = "text_recognizer.data."
IAM_PARAGRAPHS = f"{DATA}iam.paragraphs.IAMParagraphs"
# Datamodules by the `_target_` checkpoints recorded before `text_recognizer.data` was organised
# by source, a folder each: a recorded one (nested ones too) is read as the class it is now, with
# the keywords the old name stood for (the IAM paragraph variants were subclasses).
MOVED: dict[str, tuple[str, dict[str, Any]]] = {
    f"{DATA}synthetic_lines.SyntheticLines": (f"{DATA}synthetic.lines.SyntheticLines", {}),
    f"{DATA}synthetic_paragraphs.SyntheticParagraphs": (
        f"{DATA}synthetic.paragraphs.SyntheticParagraphs",
        {},
    ),
    f"{DATA}iam_lines.IAMLines": (f"{DATA}iam.lines.IAMLines", {}),
    f"{DATA}iam_paragraphs.IAMParagraphs": (IAM_PARAGRAPHS, {}),
    f"{DATA}iam_paragraphs.IAMSyntheticParagraphs": (IAM_PARAGRAPHS, {"real_train": False}),
    f"{DATA}iam_paragraphs.IAMExtendedParagraphs": (IAM_PARAGRAPHS, {"real_train": True}),
    f"{DATA}emnist.EMNIST": (f"{DATA}emnist.characters.EMNIST", {}),
    f"{DATA}emnist_lines.EMNISTLines": (f"{DATA}emnist.lines.EMNISTLines", {}),
    f"{DATA}document_lines.DocumentLines": (f"{DATA}documents.lines.DocumentLines", {}),
}
PARAGRAPHS = f"{DATA}synthetic.paragraphs.SyntheticParagraphs"
# The lines a `line_*` synthetic paragraphs entry was stacked from: those keys named the sizes
# and the height, and the rest were these (the line renderer's defaults then).
LEGACY_LINES: dict[str, Any] = {
    "_target_": f"{DATA}synthetic.lines.SyntheticLines",
    "batch_size": 8,
    "num_workers": 0,
    "eval_batch_size": 64,
    "width": 640,
    "max_text_length": 80,
    "seed": 0,
    "augmentation_strength": 1.0,
    "augmentations": [],
    "train_families": None,
    "heldout_families": None,
    "font_folders": [],
    "heldout_font_folders": [],
}


# Keys a class gained after checkpoints were written, with the value that means what those
# checkpoints' config meant; a recorded config without the key is built with it.
ADDED_KEYS: dict[str, dict[str, Any]] = {
    f"{DATA}synthetic.lines.SyntheticLines": {"sentences": 0.0},
    IAM_PARAGRAPHS: {"real_train": True, "synthetic_size": 0, "seed": 0, "curriculum": None},
}


class InferenceSpec:
    """The network's config (nested `_target_`s, as Hydra composed it), the tokenizer's charset,
    the datamodule's evaluation transform and the datamodule's own config.

    A plain class, not a dataclass: Hydra passes it through to the model untouched, where a
    dict or dataclass would be merged into the config and its `_target_`s instantiated.
    """

    def __init__(
        self,
        network: dict[str, Any],
        charset: str,
        transform: dict[str, Any],
        datamodule: dict[str, Any] | None = None,
        normalization: str | None = None,
        mapping: dict[str, str] | None = None,
    ) -> None:
        self.network = network
        self.charset = charset
        self.transform = transform
        self.datamodule = datamodule
        self.normalization = normalization
        self.mapping = mapping or {}

    @classmethod
    def of_run(
        cls, network: object, datamodule_config: object, datamodule: BaseDataModule
    ) -> InferenceSpec:
        """From a run's resolved network and datamodule configs and its datamodule."""
        tokenizer = datamodule.tokenizer
        return cls(
            network=_config(network, "training", "network config"),
            charset=tokenizer.charset,
            transform=datamodule.eval_transform.params(),
            datamodule=_config(datamodule_config, "training", "datamodule config"),
            normalization=tokenizer.normalization,
            mapping=tokenizer.mapping,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "network": self.network,
            "tokenizer": tokenizer_entry(self.tokenizer()),
            "transform": self.transform,
            "datamodule": self.datamodule,
        }

    @classmethod
    def from_dict(cls, data: object, source: object) -> InferenceSpec:
        """Validated; every problem is a `CheckpointError` naming `source` and the field."""
        if not isinstance(data, dict):
            raise CheckpointError(source, f"its {CHECKPOINT_KEY!r} entry is not a mapping")
        data = {**data, "datamodule": _moved(data.get("datamodule"))}
        version = data.get("format_version")
        if version == 1:
            data = _from_format_1(data, source)
        elif version != FORMAT_VERSION:
            raise CheckpointError(
                source, f"inference format {version!r}; this version reads 1 to {FORMAT_VERSION}"
            )
        tokenizer = read_tokenizer(data.get("tokenizer"), source)
        transform = _config(data.get("transform"), source, "transform")
        try:
            EvalTransform(**transform)
        except (TypeError, ValueError) as error:
            raise CheckpointError(source, f"bad transform {transform!r}: {error}") from error
        datamodule = data.get("datamodule")
        return cls(
            network=_config(data.get("network"), source, "network config"),
            charset=tokenizer.charset,
            transform=transform,
            datamodule=(
                None
                if datamodule is None
                else _composed_lines(_config(datamodule, source, "datamodule"))
            ),
            normalization=tokenizer.normalization,
            mapping=tokenizer.mapping,
        )

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.charset, self.normalization, self.mapping)

    def eval_transform(self) -> EvalTransform:
        return EvalTransform(**self.transform)

    def build_network(self, source: object) -> ConvTransformer:
        network = build(self.network, nn.Module, source)
        if not isinstance(network, ConvTransformer):
            raise CheckpointError(source, f"{self.network['_target_']} is not a ConvTransformer")
        return network

    def build_datamodule(self, source: object) -> BaseDataModule:
        from text_recognizer.data.base import BaseDataModule

        if self.datamodule is None:
            raise CheckpointError(source, "records no datamodule; name one with --datamodule")
        datamodule = build(self.datamodule, BaseDataModule, source)
        assert isinstance(datamodule, BaseDataModule)
        return datamodule


def tokenizer_entry(tokenizer: Tokenizer) -> dict[str, Any]:
    """How a checkpoint and an export manifest record a tokenizer: its charset, normalisation
    and mapping (`Tokenizer.params`), and the special tokens its indices start with."""
    return {**tokenizer.params(), "special_tokens": list(SPECIAL_TOKENS)}


def read_tokenizer(entry: object, source: object) -> Tokenizer:
    """The tokenizer a `tokenizer_entry` records; without a normalisation or a mapping (older
    entries), text is taken as it is. Every problem is a `CheckpointError` naming `source`."""
    tokenizer = _config(entry, source, "tokenizer")
    charset = tokenizer.get("charset")
    if not isinstance(charset, str):
        raise CheckpointError(source, "the tokenizer has no charset")
    if tokenizer.get("special_tokens") != list(SPECIAL_TOKENS):
        raise CheckpointError(
            source,
            f"tokenizer special tokens {tokenizer.get('special_tokens')!r} differ from this "
            f"version's {list(SPECIAL_TOKENS)!r}",
        )
    try:
        return Tokenizer(charset, tokenizer.get("normalization"), tokenizer.get("mapping") or {})
    except (TypeError, ValueError) as error:
        raise CheckpointError(source, f"bad tokenizer: {error}") from error


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], InferenceSpec]:
    """A checkpoint training wrote, and its spec, loaded with `weights_only=True` (tensors and
    plain data only, so a file crafted to run code when unpickled is refused); every problem is
    a `CheckpointError` naming the file."""
    path = Path(path)
    checkpoint = _load(path)
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            path,
            f"no {CHECKPOINT_KEY!r} entry: not a checkpoint written by this package's training "
            "(main.py), or written before it recorded what inference needs",
        )
    return checkpoint, InferenceSpec.from_dict(checkpoint[CHECKPOINT_KEY], path)


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


def network_weights(checkpoint: dict[str, Any], source: object) -> dict[str, Any]:
    """The network's tensors in a training checkpoint, under the network's own names."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(source, "no state_dict")
    return {k[len(NETWORK_PREFIX) :]: v for k, v in state.items() if k.startswith(NETWORK_PREFIX)}


def build(config: Any, base: type, source: object) -> Any:
    """Instantiate a config's nested `_target_`s, refusing any that is not a subclass of `base`
    defined in this package (no functions, no other package's classes)."""
    if isinstance(config, list):
        return [build(item, base, source) for item in config]
    if not isinstance(config, dict):
        return config
    kwargs = {k: build(v, base, source) for k, v in config.items() if k != "_target_"}
    if "_target_" not in config:
        return kwargs
    target = config["_target_"]
    kwargs = ADDED_KEYS.get(target, {}) | kwargs
    cls = _resolve(target)
    if not (isinstance(cls, type) and issubclass(cls, base) and cls.__module__.startswith(PACKAGE)):
        raise CheckpointError(
            source,
            f"refusing to build {target!r}: only {base.__name__} classes of the "
            f"{PACKAGE.rstrip('.')} package are built from a checkpoint",
        )
    unsupported = [k for k in kwargs if k.startswith("_") and k.endswith("_")]
    if unsupported:
        raise CheckpointError(source, f"{target}: unsupported config keys {unsupported}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise CheckpointError(source, f"cannot build {target}: {error}") from error


def _resolve(target: object) -> object:
    """The object `target` names if it lies inside this package, else None (never imported)."""
    if not isinstance(target, str) or not target.startswith(PACKAGE):
        return None
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _from_format_1(data: dict[str, Any], source: object) -> dict[str, Any]:
    """A format 1 entry as format 2 (see the module doc)."""
    from text_recognizer.data.base import BaseDataModule

    network = dict(_config(data.get("network"), source, "network config"))
    network.pop("encoder_dim", None)
    network.pop("decoder_dim", None)
    transform = dict(_config(data.get("transform"), source, "transform"))
    datamodule = data.get("datamodule")
    cls = _resolve(datamodule.get("_target_")) if isinstance(datamodule, dict) else None
    resize = cls.resize if isinstance(cls, type) and issubclass(cls, BaseDataModule) else "height"
    transform.setdefault("resize", resize)
    return {**data, "network": network, "transform": transform}


def _moved(config: Any) -> Any:
    """A recorded datamodule config with each `_target_` that `MOVED` names as it is now."""
    if not isinstance(config, dict):
        return config
    moved = {k: _moved(v) for k, v in config.items()}
    if moved.get("_target_") not in MOVED:
        return moved
    target, meant = MOVED[moved["_target_"]]
    return {**moved, "_target_": target, **meant}


def _composed_lines(datamodule: dict[str, Any]) -> dict[str, Any]:
    """A synthetic paragraphs entry with `line_*` keys as the `lines` entry it meant."""
    if datamodule.get("_target_") != PARAGRAPHS or "lines" in datamodule:
        return datamodule
    own = {k: v for k, v in datamodule.items() if not k.startswith("line_")}
    named = {k.removeprefix("line_"): v for k, v in datamodule.items() if k.startswith("line_")}
    return {**own, "lines": {**LEGACY_LINES, **named}}


def _config(value: object, source: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CheckpointError(source, f"{what} is missing or not a mapping with string keys")
    return value
