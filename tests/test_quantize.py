"""int8 linear layers against fp32, eager and exported: the same text for most lines, logits
close, and the exported int8 step run by the same loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_recognizer import TEXTS, Tiny, render

from text_recognizer import cli
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.export import export
from text_recognizer.inference.models.exported import ExportedRecognizer

QUANTIZED = torch.ao.nn.quantized.dynamic.Linear


def _inputs(tiny: Tiny) -> list[np.ndarray]:
    """Its training lines and two lines in a font it never saw."""
    return [*tiny.images, *render(["Brown dog", "tiny 9 ok"], family="caveat")]


def test_int8_reads_what_fp32_reads_with_close_logits(tiny_checkpoint: Tiny) -> None:
    """Tolerance, at the positions up to each reading's end (beyond it the decoder reads its own
    padding): each logit within 10% of its row's range (max - min), and within 2% on average
    (measured: 3% and 0.9% at worst). int8 rounds every weight to 1/254 of its output
    channel's range and every activation to 1/255 of its tensor's range, in each of the
    encoder's and decoder's linear layers in turn; at the tiny model's widths (16 to 64) few
    products average those errors out, so single logits move by a few percent while the choice
    between them rarely does."""
    fp32 = load_recognizer(tiny_checkpoint.checkpoint)
    int8 = load_recognizer(tiny_checkpoint.checkpoint, quantize="int8")
    network = int8.network
    assert isinstance(network.decoder.blocks[0].ff.to_hidden, QUANTIZED)  # type: ignore[union-attr]
    assert any(isinstance(m, QUANTIZED) for m in network.encoder.modules())
    assert not isinstance(network.decoder.to_logits, QUANTIZED)  # the heads stay fp32
    assert not isinstance(fp32.network.decoder.to_logits, QUANTIZED)  # a copy was quantized
    inputs = _inputs(tiny_checkpoint)
    same = sum(
        a == b for a, b in zip(fp32.predict_batch(inputs), int8.predict_batch(inputs), strict=True)
    )
    assert same >= len(inputs) - 1
    assert int8.predict_batch(tiny_checkpoint.images) == TEXTS

    batch = fp32.transform.batch([fp32.fit(image) for image in inputs])
    tokens = fp32.decode(batch)
    teacher = torch.cat((torch.full_like(tokens[:, :1], fp32.tokenizer.start_index), tokens), 1)
    with torch.inference_mode():
        expected = fp32.network(batch, teacher[:, :-1]).logits
        got = int8.network(batch, teacher[:, :-1]).logits
    ended = (tokens == fp32.tokenizer.end_index).long().cumsum(1)
    text = (ended == 0) | ((ended == 1) & (tokens == fp32.tokenizer.end_index))
    error = (got - expected).abs() / (expected.amax(-1) - expected.amin(-1)).unsqueeze(-1)
    assert error.amax(-1)[text].max() <= 0.1
    assert error.mean(-1)[text].max() <= 0.02


def test_an_int8_torchscript_export_reads_what_eager_int8_reads(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    eager = load_recognizer(tiny_checkpoint.checkpoint, quantize="int8")
    fp32 = load_recognizer(tiny_checkpoint.checkpoint)
    folder = export(fp32, "torchscript", tmp_path / "ts8", quantize="int8")[-1].parent
    assert json.loads((folder / "model.json").read_text())["quantize"] == "int8"
    inputs = _inputs(tiny_checkpoint)
    assert ExportedRecognizer(folder).predict_batch(inputs) == eager.predict_batch(inputs)


@pytest.mark.slow  # ONNX export and quantization take about 15 s
def test_an_int8_onnx_export_reads_like_fp32(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "onnx8"
    ckpt = str(tiny_checkpoint.checkpoint)
    cli.main(
        [
            "export",
            "--checkpoint",
            ckpt,
            "--format",
            "onnx",
            "--quantize",
            "int8",
            "--out",
            f"{out}",
        ]
    )
    capsys.readouterr()
    model = json.loads((out / "model.json").read_text())
    assert model["quantize"] == "int8"
    int8 = ExportedRecognizer(out).predict_batch(tiny_checkpoint.images)
    assert sum(a == b for a, b in zip(int8, TEXTS, strict=True)) >= len(TEXTS) - 1
