"""Model references: what `load_recognizer`, `predict --model` and `evaluate` accept, resolved
to a checkpoint file or an exported folder on this machine.

- a path: a checkpoint, an exported folder, or a folder holding one of them;
- `https://host/model.zip#sha256=<hex>`: fetched once into the cache by the dataset download
  code (progress bar, sha256 checked, unpacked with its checks against escaping members);
- `wandb:<entity>/<project>/<artifact>:<alias>`: a W&B artifact, through wandb's client;
- `hf:<user>/<repo>[@revision]`: a Hugging Face Hub snapshot, through huggingface_hub.

Downloads land in the cache (`TEXT_RECOGNIZER_CACHE`, by default `~/.cache/text-recognizer`)
whole or not at all. A cached model is used with no network call: a zip by its checksum, a W&B
version alias (`:v3`) as it is immutable; a moving alias (`:latest`) is looked up again, falling
back to the cached copy when W&B cannot be reached; the Hub's own cache rules apply to `hf:`
(`HF_HUB_OFFLINE=1` never asks the Hub).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

from text_recognizer.data.download import (
    MARKER,
    Metadata,
    download,
    ensure_extracted,
)
from text_recognizer.errors import InferenceError
from text_recognizer.inference.models.manifest import MANIFEST
from text_recognizer.io import exclusive, publish

CACHE_ENV = "TEXT_RECOGNIZER_CACHE"
SCHEMES = (
    "a path, https://.../model.zip#sha256=<hex>, wandb:<entity>/<project>/<artifact>:<alias> "
    "or hf:<user>/<repo>[@revision]"
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(.*)", re.DOTALL)  # two letters or more: not C:
_NAME = r"[\w.-]+"
_WANDB = re.compile(rf"({_NAME})/({_NAME})/({_NAME}):({_NAME})")
_HF = re.compile(rf"({_NAME}/{_NAME})(?:@([\w./-]+))?")
_VERSION = re.compile(r"v\d+")
_DONE = ".complete"  # written last into a downloaded W&B folder


class ModelReferenceError(InferenceError):
    """A model reference that cannot be resolved: `<reference>: <what is wrong and what to do>`."""


def cache_root() -> Path:
    """`TEXT_RECOGNIZER_CACHE`, else `text-recognizer` in the user's cache folder."""
    if given := os.environ.get(CACHE_ENV):
        return Path(given).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "text-recognizer"


def resolve(reference: str | Path) -> Path:
    """The local checkpoint or exported folder `reference` names, fetched if it is remote."""
    text = str(reference)
    match = _SCHEME.fullmatch(text)
    if isinstance(reference, Path) or Path(text).exists() or match is None:
        return find_model(Path(text))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme in ("https", "http"):
        return _zip(text)
    if scheme == "wandb":
        return _wandb(text, rest)
    if scheme == "hf":
        return _hf(text, rest)
    raise ModelReferenceError(text, f"unknown scheme {scheme!r}: give {SCHEMES}")


def find_model(path: Path, descend: bool = False) -> Path:
    """`path` itself if it is a file or an exported folder, else the one checkpoint in it
    (`best.ckpt` among several); with `descend`, a lone subfolder (an unpacked zip's) is looked
    into as well."""
    if not path.is_dir() or (path / MANIFEST).is_file():
        return path
    checkpoints = sorted(path.glob("*.ckpt"))
    if len(checkpoints) == 1:
        return checkpoints[0]
    if (path / "best.ckpt").is_file():
        return path / "best.ckpt"
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if descend and len(entries) == 1 and entries[0].is_dir():
        return find_model(entries[0], descend)
    return path


def _found(folder: Path, reference: str) -> Path:
    model = find_model(folder, descend=True)
    if model.is_dir() and not (model / MANIFEST).is_file():
        raise ModelReferenceError(
            reference, f"{folder} holds no checkpoint (.ckpt) and no exported model ({MANIFEST})"
        )
    return model


def _zip(reference: str) -> Path:
    url, _, fragment = reference.partition("#")
    key, _, digest = fragment.partition("=")
    if key != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise ModelReferenceError(
            reference, "end the URL with #sha256=<the zip's 64 hex digits>, so it can be verified"
        )
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name
    if not name.endswith(".zip"):
        raise ModelReferenceError(reference, "the URL must name a .zip file")
    digest = digest.lower()
    meta = Metadata(digest, url, name, digest, source=Path("the #sha256 of the reference"))
    root = cache_root()
    marker = meta.extracted(root) / MARKER
    if not (marker.is_file() and marker.read_text().strip() == digest):
        download(meta, root)  # streamed to a temporary name, verified, then renamed
    return _found(ensure_extracted(meta, root=root), reference)


def _wandb(reference: str, rest: str) -> Path:
    match = _WANDB.fullmatch(rest)
    if match is None:
        raise ModelReferenceError(reference, "expected wandb:<entity>/<project>/<artifact>:<alias>")
    entity, project, name, alias = match.groups()
    target = cache_root() / "wandb" / entity / project / name / alias
    cached = (target / _DONE).is_file()
    if cached and _VERSION.fullmatch(alias):
        return _found(target, reference)
    import wandb

    try:
        artifact = wandb.Api().artifact(rest)
    except (wandb.errors.CommError, OSError) as error:
        problem = _first_line(error)
        if cached:
            print(f"warning: {reference}: {problem}; using the cached copy", file=sys.stderr)
            return _found(target, reference)
        raise ModelReferenceError(
            reference, f"{problem} (check the entity, project, artifact and alias)"
        ) from None
    except wandb.errors.UsageError as error:
        raise ModelReferenceError(
            reference, f"{_first_line(error)}: run `wandb login` or set WANDB_API_KEY"
        ) from None
    with exclusive(target):
        tmp = Path(tempfile.mkdtemp(prefix=f".{alias}.", suffix=".tmp", dir=target.parent))
        try:
            artifact.download(root=str(tmp))
            (tmp / _DONE).write_text(f"{artifact.digest}\n")
            if target.exists():
                shutil.rmtree(target)
            publish(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _found(target, reference)


def _hf(reference: str, rest: str) -> Path:
    match = _HF.fullmatch(rest)
    if match is None:
        raise ModelReferenceError(reference, "expected hf:<user>/<repo>[@revision]")
    repo, revision = match.groups()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = cache_root() / "hf"
    try:
        folder = snapshot_download(repo, revision=revision, cache_dir=cache)
    except RepositoryNotFoundError:
        raise ModelReferenceError(
            reference, "no such repository on the Hub (a private one needs `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        problem = f"the repository has no revision {revision!r}"
        raise ModelReferenceError(reference, problem) from None
    except LocalEntryNotFoundError:
        raise ModelReferenceError(
            reference,
            f"not in the cache ({cache}) and the Hub cannot be reached (or HF_HUB_OFFLINE is "
            "set): download it once with the network",
        ) from None
    return _found(Path(folder), reference)


def _first_line(error: Any) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
