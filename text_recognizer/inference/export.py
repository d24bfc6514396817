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
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from text_recognizer.data.transforms import EvalTransform
from text_recognizer.decode import (
    DECODERS,
    BeamOptions,
    LoopSetup,
    beam_loop,
    check_decoder,
    chooser,
    ctc_decode,
    greedy_loop,
    step_scorer,
)
from text_recognizer.errors import CheckpointError
from text_recognizer.inference.quantize import check_quantize, quantize_network, quantize_onnx
from text_recognizer.inference.recognizer import Recognizer, TextRecognizer
from text_recognizer.io import atomic_path
from text_recognizer.metadata.charset import SPECIAL_TOKENS
from text_recognizer.network.conv_transformer import ConvTransformer
from text_recognizer.network.transformer.attention import CrossAttention, SelfAttention
from text_recognizer.network.transformer.block import Block
from text_recognizer.network.transformer.decoder import Decoder
from text_recognizer.network.transformer.kv_cache import GrowingKVCache, KVCache
from text_recognizer.tokenizer import Tokenizer

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
MANIFEST = "model.json"
FORMAT_VERSION = 3  # 2: the transform records the stem's resize rule; 3: the decoder
READS = (1, 2, 3)  # format 1 read its images by the rule lines use, which it goes on doing
ENCODER_IO = (["images"], ["cross_k", "cross_v"])
CTC_OUTPUT = "ctc_log_probs"
STEP_IO = (
    ["token", "position", "self_k", "self_v", "cross_k", "cross_v"],
    ["logits", "next_self_k", "next_self_v"],
)


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


def export(recognizer: TextRecognizer, format: str, out: Path, quantize: str | None = None) -> Path:
    """Write the graphs `recognizer.decoder` reads with (the encoder and the step, or the
    encoder and CTC head) and `model.json` into `out`; return the manifest's path."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    check_quantize(quantize)
    network = recognizer.network.cpu().eval()
    if quantize and format == "torchscript":
        network = quantize_network(network)
    out.mkdir(parents=True, exist_ok=True)
    graphs = _ctc_graph if recognizer.decoder == "ctc" else _joint_graphs
    files, reading = graphs(network, recognizer, format, out)
    if quantize and format == "onnx":
        for file in files.values():
            quantize_onnx(out / file)
    manifest = {
        "format_version": FORMAT_VERSION,
        "runtime": format,
        "quantize": quantize,
        "decoder": recognizer.decoder,
        "files": files,
        "tokenizer": {
            "charset": recognizer.tokenizer.charset,
            "special_tokens": list(SPECIAL_TOKENS),
            "start_index": recognizer.tokenizer.start_index,
            "end_index": recognizer.tokenizer.end_index,
            "pad_index": recognizer.tokenizer.pad_index,
        },
        "transform": recognizer.transform.params(),
        "input": "float32 (batch, 1, height, width): grayscale resized to height, padded with "
        "paper to width (cropped to the widest content if crop_width, and the tallest if "
        "crop_height), ink 1 and paper 0",
        "max_length": recognizer.max_length,
        **reading,
        "network": recognizer.spec.network,
    }
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return out / MANIFEST


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
    files = {name: f"{name}{FORMATS[format]}" for name in ("encoder", "decoder_step")}
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
    files = {"encoder": f"encoder{FORMATS[format]}"}
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


class ExportedRecognizer(Recognizer):
    """Reads images with exported files (onnxruntime for ONNX, `torch.jit.load` for
    TorchScript), on the CPU, with the same transform, batching and greedy loop (or beam search)
    as the network, and the decoder the export was made for (`decoder`: None, or that one)."""

    def __init__(
        self,
        folder: str | Path,
        max_length: int | None = None,
        batch_size: int | None = None,
        beam: BeamOptions | None = None,
        decoder: str | None = None,
    ) -> None:
        folder = Path(folder)
        manifest = _manifest(folder)
        exported = manifest.get("decoder", "joint")
        if decoder is not None and decoder != exported:
            check_decoder(decoder, True, folder)  # an unknown name is refused as such
            raise CheckpointError(
                folder, f"was exported for --decoder {exported}; export it with --decoder {decoder}"
            )
        tokenizer = Tokenizer(manifest["tokenizer"]["charset"])
        limit = manifest["max_length"]
        if max_length is not None and max_length > limit:
            raise CheckpointError(folder, f"max length {max_length} exceeds the exported {limit}")
        transform = EvalTransform(**{"resize": "height", **manifest["transform"]})
        super().__init__(tokenizer, transform, max_length or limit, exported, batch_size, beam)
        files = [folder / file for file in manifest["files"].values()]
        runtime = _OnnxRuntime if manifest["runtime"] == "onnx" else _TorchScriptRuntime
        self.runtime = runtime(*files)
        self.cache = manifest.get("cache", {})
        self.ctc_decode_weight = float(manifest.get("ctc_decode_weight", 0.0))

    def decode(self, images: Tensor, beam: BeamOptions | None = None) -> Tensor:
        batch, width = images.shape[0], beam.width if beam else 1
        outputs = [torch.as_tensor(o) for o in self.runtime.encode(images)]
        setup = LoopSetup(
            batch,
            torch.device("cpu"),
            self.tokenizer.start_index,
            self.tokenizer.end_index,
            self.tokenizer.pad_index,
        )
        if self.decoder == "ctc":
            return ctc_decode(outputs[0], setup, self.max_length, beam)
        # Beam search: each image's hypotheses are `width` consecutive rows.
        cross = [o.repeat_interleave(width, 1) for o in outputs[:2]]
        ctc = [o.repeat_interleave(width, 0) for o in outputs[2:]]
        layers, kv_heads, dim_head = (self.cache[k] for k in ("layers", "kv_heads", "dim_head"))
        shape = (layers, batch * width, kv_heads, 0, dim_head)
        cache = (torch.zeros(shape), torch.zeros(shape))

        def next_logits(tokens: Tensor, pos: int) -> Tensor:
            nonlocal cache
            logits, *new = self.runtime.step(tokens[:, pos : pos + 1], pos, *cache, *cross)
            cache = (new[0], new[1])
            return logits

        def reorder(rows: Tensor) -> None:
            nonlocal cache
            cache = (cache[0][:, rows], cache[1][:, rows])

        ctc_log_probs = ctc[0] if ctc else None
        weight, blank, end = self.ctc_decode_weight, setup.pad_index, setup.end_index
        if beam is None:
            choose = chooser(ctc_log_probs, weight, blank, end)
            return greedy_loop(next_logits, setup, self.max_length, choose=choose)
        scorer = step_scorer(ctc_log_probs, weight, blank, end)
        return beam_loop(next_logits, reorder, setup, self.max_length, scorer, beam)


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(folder, f"no {MANIFEST}: not a folder written by export")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format_version") not in READS:
        raise CheckpointError(
            path, f"not an export manifest of format {' or '.join(map(str, READS))}"
        )
    if manifest.get("runtime") not in FORMATS:
        raise CheckpointError(path, f"unknown runtime {manifest.get('runtime')!r}")
    if manifest.get("decoder", "joint") not in DECODERS:
        raise CheckpointError(path, f"unknown decoder {manifest['decoder']!r}")
    if manifest["tokenizer"].get("special_tokens") != list(SPECIAL_TOKENS):
        raise CheckpointError(path, "its special tokens differ from this version's")
    for file in manifest["files"].values():
        if not (folder / file).is_file():
            raise CheckpointError(folder / file, "no such file")
    return manifest


class _OnnxRuntime:
    """onnxruntime sessions on the CPU, with as many threads as torch uses."""

    def __init__(self, *paths: Path) -> None:
        """The encoder's file, then the step's if there is one."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.sessions = []
        for path in paths:
            try:
                self.sessions.append(
                    onnxruntime.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]
                    )
                )
            except Exception as error:  # onnxruntime raises its own untyped errors
                raise CheckpointError(path, f"not a loadable ONNX model ({error})") from error

    def encode(self, images: Tensor) -> list[np.ndarray]:
        return self.sessions[0].run(None, {"images": np.ascontiguousarray(images.numpy())})

    def step(self, token: Tensor, pos: int, *caches: Tensor | np.ndarray) -> list[Tensor]:
        inputs = [np.ascontiguousarray(token.numpy()), np.array(pos, dtype=np.int64)]
        inputs += [c.numpy() if isinstance(c, Tensor) else c for c in caches]
        outputs = self.sessions[1].run(None, dict(zip(STEP_IO[0], inputs, strict=True)))
        return [torch.from_numpy(o) for o in outputs]


class _TorchScriptRuntime:
    def __init__(self, *paths: Path) -> None:
        """The encoder's file, then the step's if there is one."""
        self.modules = []
        for path in paths:
            try:
                with warnings.catch_warnings():  # deprecated in favour of torch.export
                    warnings.simplefilter("ignore", FutureWarning)
                    self.modules.append(torch.jit.load(str(path), map_location="cpu"))
            except RuntimeError as error:
                raise CheckpointError(path, f"not a loadable TorchScript file ({error})") from error

    @torch.inference_mode()
    def encode(self, images: Tensor) -> list[Tensor]:
        return list(self.modules[0](images))

    @torch.inference_mode()
    def step(self, token: Tensor, pos: int, *caches: Tensor) -> list[Tensor]:
        return list(self.modules[1](token, torch.tensor(pos), *caches))
