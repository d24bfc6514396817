"""int8 weights for the linear layers, activations quantized on the fly (dynamic quantization).

A cached decoding step multiplies one token's activations by every decoder weight, so it is
bound by the bytes of weight it reads: in int8 they are a quarter of fp32's, and a paragraph
decoder's fit in the CPU's last-level cache. Convolutions stay in fp32 (the encoder's
depthwise and stem convolutions are a small share of its time, and run once per image).
Eager networks use torch's dynamic quantized linear (fbgemm, VNNI); exported ONNX files use
onnxruntime's quantizer, whose MatMulInteger kernels the same loop then runs.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from text_recognizer.errors import InferenceError
from text_recognizer.io import atomic_path
from text_recognizer.network.conv_transformer import ConvTransformer

QUANTIZATIONS = ("int8",)
KEPT = ("decoder.to_logits", "ctc_head")  # in fp32


def check_quantize(quantize: str | None) -> None:
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InferenceError("--quantize", f"unknown {quantize!r}; choose from int8")


def quantize_network(network: ConvTransformer) -> ConvTransformer:
    """A copy of `network` (on the CPU, in eval mode) with its nn.Linear layers in int8, one
    scale per output channel. The output heads (the decoder's logits, the CTC head) stay fp32:
    they are small, and every decision is read off them."""
    network = copy.deepcopy(network).cpu().eval()
    spec = {
        name: torch.ao.quantization.per_channel_dynamic_qconfig
        for name, module in network.named_modules()
        if isinstance(module, nn.Linear) and name not in KEPT
    }
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(network, spec, dtype=torch.qint8)
    assert isinstance(quantized, ConvTransformer)
    return quantized


def quantize_onnx(path: Path) -> None:
    """Rewrite an exported ONNX file with its matrix products' weights in int8, in place."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # its advice to pre-process does not apply to these graphs
    try:
        with atomic_path(path) as tmp:
            quantize_dynamic(
                path, tmp, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8
            )
    finally:
        logger.setLevel(level)
