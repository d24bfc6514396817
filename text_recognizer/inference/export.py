"""Export a network for deployment outside Python: its encoder, and one cached decoding step.

The encoder maps images to the cross-attention keys and values of every decoder layer, computed
once per image. The step is a pure function: the last token, its position and the self-attention
cache in; the next token's logits and the cache grown by one position out. A runtime decodes
with it exactly as `greedy_decode` does with the in-place cache:

    cross_k, cross_v[, ctc_log_probs] = encoder(images)
    self_k = self_v = zeros (layers, batch, kv_heads, 0, dim_head); token = start
    for position in 0 .. max_length - 1:
        logits, self_k, self_v = step(token, position, self_k, self_v, cross_k, cross_v)
        token = argmax(logits), or pad once a row has produced the end token

Beam search runs on the same step: each image's hypotheses are rows of the batch, and the self
cache's rows are reordered with the beam between steps. `--quantize int8` rewrites both files
with int8 weights for their matrix products (onnxruntime's dynamic quantizer, or torch's
dynamic quantized linear traced into TorchScript); the loop does not change.

A network that decodes jointly with its CTC head (`ctc_decode_weight` > 0) also exports the CTC
log probabilities, and the token is then chosen as `CTCPrefixScorer` does. `model.json` beside
the two files holds what a runtime needs: the tokenizer, the transform, the maximum length, the
CTC weight, the tensor names and the cache shapes.

Exported for `--decoder ctc`, the encoder ends in the CTC head instead (images to its log
probabilities) and there is no step: a runtime reads the best path (argmax per frame, repeats
merged, blanks dropped), or runs the CTC prefix beam search. `model.json` records the decoder, so
`predict --model` reads an export the way it was made to be read.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from text_recognizer.data.transforms import EvalTransform
from text_recognizer.errors import InferenceError
from text_recognizer.inference.models.exported import needs_export_extra
from text_recognizer.inference.models.manifest import (
    CTC_OUTPUT,
    ENCODER_IO,
    RUNTIMES,
    STEP_IO,
    write_manifest,
)
from text_recognizer.inference.quantize import check_quantize, quantize_network, quantize_onnx
from text_recognizer.inference.recognizer import TextRecognizer
from text_recognizer.io import atomic_path
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.network.transformer.attention import CrossAttention, SelfAttention
from text_recognizer.network.transformer.block import Block
from text_recognizer.network.transformer.decoder import Decoder
from text_recognizer.network.transformer.kv_cache import GrowingKVCache, KVCache


def _attention(decoder: Decoder) -> list[tuple[SelfAttention, CrossAttention]]:
    layers = []
    for block in decoder.blocks:
        if not isinstance(block, Block) or block.cross_attn is None:
            raise TypeError("decoder blocks must cross-attend")
        layers.append((block.attn, block.cross_attn))
    return layers


class EncoderGraph(nn.Module):
    """Images (b, 1, h, w) -> cross-attention keys and values (layers, b, kv_heads, s, dim_head),
    then the CTC log probabilities (b, w, num_tokens) if decoding weighs them in."""

    def __init__(self, network: ConvTransformer) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        memory, ctc_log_probs = self.network.encode_for_decoding(images)
        keys_values = [cross.keys_values(memory) for _, cross in _attention(self.network.decoder)]
        outputs = torch.stack([k for k, _ in keys_values]), torch.stack([v for _, v in keys_values])
        return outputs if ctc_log_probs is None else (*outputs, ctc_log_probs)


class CTCGraph(nn.Module):
    """Images (b, 1, h, w) -> the CTC head's log probabilities (b, w, num_tokens), all that
    `--decoder ctc` reads."""

    def __init__(self, network: ConvTransformer) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: Tensor) -> tuple[Tensor]:
        return (self.network.ctc_log_probs(images),)


class StepGraph(nn.Module):
    """`Decoder.step` for one token, with the caches as inputs and outputs instead of state."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self,
        token: Tensor,
        position: Tensor,
        self_k: Tensor,
        self_v: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        layers = _attention(self.decoder)
        for i, (attn, cross) in enumerate(layers):
            attn.cache = GrowingKVCache(self_k[i], self_v[i])
            cross.cache = KVCache(cross_k[i], cross_v[i])
        try:
            logits = self.decoder.step(token, position)[:, -1]
            caches = [attn.cached() for attn, _ in layers]
            return logits, torch.stack([c.k for c in caches]), torch.stack([c.v for c in caches])
        finally:
            self.decoder.clear_cache()


def export(
    recognizer: TextRecognizer, format: str, out: Path, quantize: str | None = None
) -> list[Path]:
    """Write the graphs `recognizer.decoder` reads with (the encoder and the step, or the
    encoder and CTC head) and `model.json` into `out`; return the files, the manifest last."""
    if format not in RUNTIMES:
        raise ValueError(f"unknown format {format!r}; choose from {', '.join(RUNTIMES)}")
    check_quantize(quantize)
    network = recognizer.network.cpu().eval()
    if quantize and format == "torchscript":
        network = quantize_network(network)
    out.mkdir(parents=True, exist_ok=True)
    graphs = _ctc_graph if recognizer.decoder == "ctc" else _joint_graphs
    try:
        files, reading = graphs(network, recognizer, format, out)
        if quantize and format == "onnx":
            for file in files.values():
                quantize_onnx(out / file)
    except ModuleNotFoundError as error:
        raise InferenceError(f"--format {format}", needs_export_extra(error)) from error
    manifest = write_manifest(out, recognizer, format, quantize, files, reading)
    return [*(out / file for file in files.values()), manifest]


Graphs = tuple[dict[str, str], dict[str, Any]]
"""The files written (by role) and what the manifest says of reading with them."""


def _joint_graphs(
    network: ConvTransformer, recognizer: TextRecognizer, format: str, out: Path
) -> Graphs:
    """The encoder (to the cross-attention keys and values) and the cached decoding step."""
    encoder, step = EncoderGraph(network).eval(), StepGraph(network.decoder).eval()
    attention = _attention(network.decoder)[0][0]
    layers, kv_heads, dim_head = len(network.decoder.blocks), attention.kv_heads, attention.dim_head
    images = _example_images(recognizer.transform)
    with torch.no_grad():
        cross_k, cross_v, *_ = encoder(images)
    encoder_io = (ENCODER_IO[0], ENCODER_IO[1] + [CTC_OUTPUT] * bool(network.ctc_decode_weight))
    # Distinct example tensors: the ONNX exporter wires inputs that alias into one.
    self_k, self_v = (torch.randn(layers, 2, kv_heads, 2, dim_head) for _ in range(2))
    token, position = torch.ones(2, 1, dtype=torch.long), torch.tensor(2)
    step_inputs = (token, position, self_k, self_v, cross_k, cross_v)
    files = {name: f"{name}{RUNTIMES[format]}" for name in ("encoder", "decoder_step")}
    with atomic_path(out / files["encoder"]) as tmp:
        _export(format, encoder, (images,), tmp, encoder_io, _encoder_dims(recognizer.transform))
    with atomic_path(out / files["decoder_step"]) as tmp:
        _export(format, step, step_inputs, tmp, STEP_IO, _step_dims(recognizer.max_length))
    return files, {
        "ctc_decode_weight": network.ctc_decode_weight,
        "encoder": {"inputs": encoder_io[0], "outputs": encoder_io[1]},
        "decoder_step": {"inputs": STEP_IO[0], "outputs": STEP_IO[1]},
        "cache": {
            "layers": layers,
            "kv_heads": kv_heads,
            "dim_head": dim_head,
            "self": "(layers, batch, kv_heads, positions so far, dim_head); 0 positions at first",
            "cross": "(layers, batch, kv_heads, memory length, dim_head), from the encoder",
        },
    }


def _ctc_graph(
    network: ConvTransformer, recognizer: TextRecognizer, format: str, out: Path
) -> Graphs:
    """The encoder and the CTC head, to the head's log probabilities: no decoder step."""
    files = {"encoder": f"encoder{RUNTIMES[format]}"}
    encoder_io = (ENCODER_IO[0], [CTC_OUTPUT])
    images = _example_images(recognizer.transform)
    with atomic_path(out / files["encoder"]) as tmp:
        dims = _encoder_dims(recognizer.transform)
        _export(format, CTCGraph(network).eval(), (images,), tmp, encoder_io, dims)
    return files, {"encoder": {"inputs": encoder_io[0], "outputs": encoder_io[1]}}


def _example_images(transform: EvalTransform) -> Tensor:
    return torch.rand(2, 1, transform.stem.height, transform.stem.width)


def _encoder_dims(transform: EvalTransform) -> tuple[dict[int, Any]]:
    dims: dict[int, Any] = {0: torch.export.Dim("batch")}
    # Batches cropped to their content: any height or width up to the full.
    if transform.crop_height:
        dims[2] = torch.export.Dim("height", max=transform.stem.height)
    if transform.crop_width:
        dims[3] = torch.export.Dim("width", max=transform.stem.width)
    return (dims,)


def _step_dims(max_length: int) -> tuple[dict[int, Any] | None, ...]:
    batch, memory = torch.export.Dim("batch"), torch.export.Dim("memory")
    positions = torch.export.Dim("positions", min=0, max=max_length)
    cache, cross = {1: batch, 3: positions}, {1: batch, 3: memory}
    return ({0: batch}, None, cache, cache, cross, cross)


def _export(
    format: str,
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    dims: tuple[dict[int, Any] | None, ...],
) -> None:
    with torch.no_grad(), _quiet_exporter():
        if format == "torchscript":
            torch.jit.save(torch.jit.trace(module, inputs), str(path))
            return
        torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=names[0],
            output_names=names[1],
            dynamic_shapes=dims,
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Tracing warns about every Python-level branch, the ONNX exporter about optional packages
    it does not use here: none of it is the user's business."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
