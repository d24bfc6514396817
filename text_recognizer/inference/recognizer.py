"""Images -> text with a trained network: the datamodule's evaluation transform, width-sorted
batches, and `greedy_decode` on the kv cache (or the CTC head alone, with `decoder="ctc"`).

Input convention: grayscale (colour is converted), dark ink on light paper, any size. Each image
is scaled and padded by the same stem the model's datamodule applies in validation (uniformly,
by the resize rule the checkpoint records: lines to the height, pages only shrunk; padded with
paper), and line batches are cropped to their widest content exactly as validation batches are.
A line wider than the model's input keeps the height instead and is read in windows cut at gaps
(`text_recognizer.data.transforms.windows`), their readings joined.
With `BeamOptions`, decoding is a beam search instead (optionally with a language model); with
`quantize="int8"`, the network's linear layers run in int8.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from text_recognizer.data.transforms import EvalTransform
from text_recognizer.data.transforms.windows import windows
from text_recognizer.decode import (
    BeamOptions,
    check_decoder,
    decode_images,
    searched,
    token_probabilities,
)
from text_recognizer.errors import ImageError, InferenceError
from text_recognizer.inference.images import ImageInput, read_image
from text_recognizer.inference.quantize import check_quantize, quantize_network
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.spec import InferenceSpec
from text_recognizer.tokenizer import Tokenizer


class Prediction(NamedTuple):
    text: str
    seconds: float
    """Wall time of the batch the image was read in (transform + decoding) over its size."""
    confidences: tuple[float, ...] = ()
    """If asked for: the probability of each character of `text`, then of the end token."""


POOL_BATCHES = 16
"""`predict_files` reads this many batches of files at a time."""
LINE_BATCH, PAGE_BATCH = 32, 4
"""Batch sizes when none is given: a cached step reads every weight once for the whole batch,
so batching pays until the activations, not the weights, dominate; lines are grouped by width
first, so a batch of 32 holds little padding."""


class Recognizer(ABC):
    """Preprocessing and batching, shared by the network and its exported files, which differ
    only in how a preprocessed batch becomes tokens (`decode`). `beam` chooses beam search
    (None: greedy), `decoder` what reads (`text_recognizer.decode.DECODERS`)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        transform: EvalTransform,
        max_length: int,
        decoder: str,
        batch_size: int | None = None,
        beam: BeamOptions | None = None,
    ) -> None:
        batch_size = batch_size or (LINE_BATCH if transform.crop_width else PAGE_BATCH)
        if batch_size <= 0:
            raise InferenceError("batch size", f"must be positive, got {batch_size}")
        self.tokenizer = tokenizer
        self.transform = transform
        self.max_length = max_length
        self.batch_size = batch_size
        self.decoder = decoder
        self.beam = beam

    @abstractmethod
    def decode(self, images: Tensor, beam: BeamOptions | None = None) -> Tensor:
        """Token indices (b, l) after the start token for a preprocessed batch (b, 1, h, w):
        greedy, or beam search with `beam`."""

    def probabilities(self, images: Tensor, tokens: Tensor) -> Tensor:
        """The probability (b, l) of each token `decode` chose for a batch."""
        raise InferenceError(
            "--model", "exported models do not score their readings; use --checkpoint"
        )

    def predict(self, image: ImageInput) -> str:
        """The text of one image: a path, a PIL image or a uint8 array (see the module doc)."""
        return self.predict_batch([image])[0]

    def predict_batch(
        self, images: Sequence[ImageInput], batch_size: int | None = None
    ) -> list[str]:
        """The text of each image, in order; read `batch_size` at a time (default: the
        recognizer's), grouped by width so a cropped batch holds little padding."""
        return [p.text for p in self.predict_timed(images, batch_size)]

    def predict_timed(
        self,
        images: Sequence[ImageInput],
        batch_size: int | None = None,
        confidences: bool = False,
    ) -> list[Prediction]:
        """`predict_batch` with the seconds each image took, and with `confidences`, the
        probability of each character read."""
        return self.predict_fitted([self.fit(image) for image in images], batch_size, confidences)

    def predict_files(
        self, paths: Sequence[Path]
    ) -> Iterator[tuple[Path, Prediction | ImageError]]:
        """Each file's `predict_timed` reading, or the error that kept it from being read, in
        order. Files are read `POOL_BATCHES` batches at a time, so that each pool is sorted
        into batches of like widths while a long list is neither held in memory nor waited for
        to the end."""
        pool = POOL_BATCHES * self.batch_size
        for start in range(0, len(paths), pool):
            chunk = paths[start : start + pool]
            images, errors = {}, {}
            for i, path in enumerate(chunk):
                try:
                    images[i] = read_image(path)
                except ImageError as error:
                    errors[i] = error
            read = dict(zip(images, self.predict_timed(list(images.values())), strict=True))
            for i, path in enumerate(chunk):
                yield path, errors[i] if i in errors else read[i]

    def fit(self, image: ImageInput) -> np.ndarray:
        """The image read and put through the stem: uint8 (height, width), dark on light, as
        the model sees it before the batch is inverted and cropped; a line too long for the
        width keeps the height and its length, to be read in windows."""
        return self.transform.stem.fit(read_image(image), any_width=True)

    def predict_fitted(
        self,
        fitted: Sequence[np.ndarray],
        batch_size: int | None = None,
        confidences: bool = False,
        beam: BeamOptions | None = None,
    ) -> list[Prediction]:
        """`predict_timed` on images already through `fit`: a server fits each request as it
        arrives and decodes those that arrive together as one batch. `beam` overrides the
        recognizer's own search for these images. An image wider than the model's input is
        read in windows, their readings joined (and their seconds added)."""
        width = self.transform.stem.width
        cut = [windows(image, width) for image in fitted]
        read = iter(self._predict([w for ws, _ in cut for w in ws], batch_size, confidences, beam))
        return [_joined([next(read) for _ in ws], joins) for ws, joins in cut]

    def _predict(
        self,
        fitted: Sequence[np.ndarray],
        batch_size: int | None,
        confidences: bool,
        beam: BeamOptions | None,
    ) -> list[Prediction]:
        """`predict_fitted` on images of the model's input size."""
        options = searched(self.beam if beam is None else beam)
        order = self.transform.order(list(fitted))
        size = batch_size or self.batch_size
        results: list[Prediction | None] = [None] * len(fitted)
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            began = time.perf_counter()
            batch = self.transform.batch([fitted[i] for i in chosen])
            tokens = self.decode(batch, options)
            texts = self.tokenizer.decode_batch(tokens.cpu())
            scores = (
                self._scores(tokens, self.probabilities(batch, tokens)) if confidences else None
            )
            seconds = (time.perf_counter() - began) / len(chosen)
            for row, (i, text) in enumerate(zip(chosen, texts, strict=True)):
                results[i] = Prediction(text, seconds, scores[row] if scores else ())
        return [r for r in results if r is not None]

    def _scores(self, tokens: Tensor, probabilities: Tensor) -> list[tuple[float, ...]]:
        """Per row, the probabilities of the tokens `Tokenizer.decode` turns into characters,
        then of the end token (if decoding reached it)."""
        skip = (self.tokenizer.start_index, self.tokenizer.pad_index)
        rows = []
        for row, scores in zip(tokens.tolist(), probabilities.tolist(), strict=True):
            kept = []
            for token, score in zip(row, scores, strict=True):
                if token not in skip:
                    kept.append(score)
                if token == self.tokenizer.end_index:
                    break
            rows.append(tuple(kept))
        return rows


def _joined(parts: list[Prediction], joins: list[str]) -> Prediction:
    """The readings of a line's windows as one: texts joined by `joins`, seconds added, and
    each character's confidence, a joining space's being the end token's of the window before
    it (the model's confidence that the window's writing ends there)."""
    if len(parts) == 1:
        return parts[0]
    text, scores = parts[0].text, list(parts[0].confidences)
    for join, part in zip(joins, parts[1:], strict=True):
        end = scores[len(text) :] or scores[-1:]  # no end token: decoding ran to its limit
        del scores[len(text) :]
        if join and text and part.text:
            text, scores = text + join, scores + end[:1]
        text, scores = text + part.text, scores + list(part.confidences)
    confidences = tuple(scores) if all(p.confidences for p in parts) else ()
    return Prediction(text, sum(p.seconds for p in parts), confidences)


class TextRecognizer(Recognizer):
    """A trained network with the tokenizer and transform its checkpoint records (a checkpoint
    loads as one through `text_recognizer.inference.load_recognizer`). `decoder` None reads with
    the attention decoder (`joint`); `source` names the network in errors (its file)."""

    def __init__(
        self,
        network: ConvTransformer,
        spec: InferenceSpec,
        device: str | torch.device = "cpu",
        max_length: int | None = None,
        batch_size: int | None = None,
        beam: BeamOptions | None = None,
        quantize: str | None = None,
        decoder: str | None = None,
        source: object = "the network",
    ) -> None:
        max_length = max_length or network.max_output_length
        if max_length > network.decoder.max_length:
            raise InferenceError(
                "max length", f"{max_length} exceeds the decoder's {network.decoder.max_length}"
            )
        decoder = decoder or "joint"  # a network's own: its attention decoder
        check_decoder(decoder, network.ctc_head is not None, source)
        transform = spec.eval_transform()
        super().__init__(spec.tokenizer(), transform, max_length, decoder, batch_size, beam)
        self.device = resolve_device(device)
        check_quantize(quantize)
        if quantize and self.device.type != "cpu":
            raise InferenceError("--quantize", "int8 runs on the CPU; leave --device cpu")
        self.quantize = quantize
        self.network = (quantize_network(network) if quantize else network).eval().to(self.device)
        self.spec = spec

    def decode(self, images: Tensor, beam: BeamOptions | None = None) -> Tensor:
        images = images.to(self.device)
        return decode_images(self.network, images, self.decoder, beam, self.max_length)

    def probabilities(self, images: Tensor, tokens: Tensor) -> Tensor:
        return token_probabilities(self.network, images.to(self.device), tokens.to(self.device))


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` is CUDA when available, else the CPU; an unavailable CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InferenceError("device", f"unknown device {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InferenceError("device", f"{device} requested but CUDA is not available")
    return resolved
