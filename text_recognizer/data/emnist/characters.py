"""EMNIST characters: 28 x 28 handwritten digits and letters (the byclass split, 62 classes).

The archive (matlab.zip) holds `matlab/emnist-byclass.mat`: a `dataset` struct with `train` and
`test` (each `images`, N x 784 uint8 stored column-major, and `labels`, N x 1) and `mapping`
(62 x 2: label -> ASCII code). Only that member is unpacked. Processing writes
`<data root>/processed/emnist/byclass-<digest>.h5` with the characters transposed upright and
inverted to the repo's convention (dark ink on light paper), labelled by the characters themselves.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from scipy.io import loadmat

from text_recognizer.data.download import ensure_extracted, load_metadata
from text_recognizer.data.processed import ProcessedFile, Writer, reading
from text_recognizer.data.processed_datamodule import ProcessedDataModule
from text_recognizer.metadata.emnist import CHAR_SIZE

FORMAT_VERSION = 1
MAT_MEMBER = "matlab/emnist-byclass.mat"
SOURCE_SPLITS = ("train", "test")


def characters_file() -> ProcessedFile:
    """The processed characters, named by the archive's sha256."""
    return ProcessedFile("emnist", "byclass", (FORMAT_VERSION, load_metadata("emnist").sha256))


def read_mat(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split -> (images (n, 28, 28) dark on light, characters (n,) as 1-character strings)."""
    try:
        dataset = loadmat(path, simplify_cells=True)["dataset"]
        # The mapping sits beside train and test; some copies keep it inside each split.
        pairs = dataset["mapping"] if "mapping" in dataset else dataset["train"]["mapping"]
        mapping = {int(label): chr(int(code)) for label, code in np.atleast_2d(pairs)}
        splits = {}
        for split in SOURCE_SPLITS:
            flat = np.asarray(dataset[split]["images"], dtype=np.uint8).reshape(-1, 784)
            labels = np.asarray(dataset[split]["labels"]).reshape(-1)
            upright = flat.reshape(-1, CHAR_SIZE, CHAR_SIZE).transpose(0, 2, 1)
            chars = np.array([mapping[int(label)] for label in labels])
            splits[split] = (255 - upright, chars)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(
            f"{path}: not an EMNIST byclass file ({type(error).__name__}: {error})"
        ) from None
    return splits


def characters_writer() -> Writer:
    """Unpacks the archive's byclass file, and returns what writes its characters."""
    folder = ensure_extracted(load_metadata("emnist"), members=[MAT_MEMBER])

    def write(f: h5py.File) -> None:
        for split, (images, chars) in read_mat(folder / MAT_MEMBER).items():
            group = f.create_group(split)
            group.create_dataset("images", data=images, compression="lzf")
            group.create_dataset("chars", data=chars.astype(h5py.string_dtype()))

    return write


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split ("train", "test") -> (images, characters), processing the archive if needed."""
    file = characters_file()
    file.build(characters_writer)
    with reading(file.path) as f:
        return {
            split: (f[split]["images"][:], f[split]["chars"].asstr()[:]) for split in SOURCE_SPLITS
        }


def balanced_indices(chars: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many samples of every class as the mean class has (rare classes repeat): byclass is
    dominated by digits and lower case, which would otherwise drown the rest."""
    classes = np.unique(chars)
    per_class = round(len(chars) / len(classes))
    picks = [rng.choice(np.flatnonzero(chars == c), per_class) for c in classes]
    return rng.permutation(np.concatenate(picks))


class EMNIST(ProcessedDataModule):
    """Single characters; validation is a fixed share of the training set, test is EMNIST's.
    The values are emnist.yaml's."""

    def __init__(
        self, *, batch_size: int, num_workers: int, balance: bool, val_fraction: float, seed: int
    ) -> None:
        super().__init__(batch_size, num_workers, CHAR_SIZE, CHAR_SIZE, max_output_length=3)
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.balance = balance
        self.val_fraction = val_fraction
        self.seed = seed

    def file(self) -> ProcessedFile:
        return characters_file()

    def writer(self) -> Writer:
        return characters_writer()

    def setup(self, stage: str | None = None) -> None:
        """EMNIST has no validation split: it is cut from the training characters."""
        if hasattr(self, "data_train"):
            return
        data = load()
        images, chars = data["train"]
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(chars))
        cut = int(len(order) * self.val_fraction)
        val, train = order[:cut], order[cut:]
        if self.balance:
            train = train[balanced_indices(chars[train], rng)]
        self.data_train = self.dataset(images[train], list(chars[train]))
        self.data_val = self.dataset(images[val], list(chars[val]))
        self.data_test = self.dataset(data["test"][0], list(data["test"][1]))
