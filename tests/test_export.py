"""Exported encoder + cached decoding step (ONNX, TorchScript) against the eager network: the
same text and the same logits, and the same CLI through `predict --model`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from fake_documents import lines_of, write_page
from PIL import Image
from tiny_recognizer import TEXTS, Tiny, render
from torchmetrics.functional.text import char_error_rate

from text_recognizer import cli
from text_recognizer.data.documents import read_document
from text_recognizer.data.documents.images import line_image, page_pixels
from text_recognizer.decode import BeamOptions
from text_recognizer.inference import load_recognizer
from text_recognizer.inference.documents import labels
from text_recognizer.inference.export import export
from text_recognizer.inference.models.exported import ExportedRecognizer
from text_recognizer.spec import CHECKPOINT_KEY


class Exported(NamedTuple):
    format: str
    folder: Path


# ONNX export takes about 10 s (torch.export, then translation): slow; TorchScript under 1 s.
@pytest.fixture(
    scope="module", params=[pytest.param("onnx", marks=pytest.mark.slow), "torchscript"]
)
def exported(
    request: pytest.FixtureRequest, tiny_checkpoint: Tiny, tmp_path_factory: pytest.TempPathFactory
) -> Exported:
    recognizer = load_recognizer(tiny_checkpoint.checkpoint)
    folder = tmp_path_factory.mktemp("exported") / request.param
    return Exported(request.param, export(recognizer, request.param, folder)[-1].parent)


def images(tiny: Tiny) -> list[np.ndarray]:
    """Lines it was trained on, lines in a font it never saw, and noise (read as anything)."""
    noise = np.random.default_rng(0).integers(0, 256, (32, 200), dtype=np.uint8)
    return [*tiny.images, *render(["Brown dog", "tiny 9 ok"], family="caveat"), noise]


def test_exported_files_read_the_same_text_as_the_network(
    tiny_checkpoint: Tiny, exported: Exported
) -> None:
    eager = load_recognizer(tiny_checkpoint.checkpoint)
    exported_recognizer = ExportedRecognizer(exported.folder)
    inputs = images(tiny_checkpoint)
    expected = eager.predict_batch(inputs, batch_size=4)
    assert expected[: len(TEXTS)] == TEXTS
    assert exported_recognizer.predict_batch(inputs, batch_size=4) == expected
    assert exported_recognizer.predict_batch(inputs, batch_size=1) == eager.predict_batch(
        inputs, batch_size=1
    )


def test_exported_beam_search_reads_what_the_networks_reads(
    tiny_checkpoint: Tiny, exported: Exported
) -> None:
    """The same beam search on the exported step: its cache is reordered between steps."""
    beam = BeamOptions(3)
    eager = load_recognizer(tiny_checkpoint.checkpoint, beam=beam)
    inputs = images(tiny_checkpoint)
    expected = eager.predict_batch(inputs, batch_size=4)
    assert ExportedRecognizer(exported.folder, beam=beam).predict_batch(inputs, 4) == expected


def test_exported_step_logits_match_teacher_forcing(
    tiny_checkpoint: Tiny, exported: Exported
) -> None:
    """Feed the eager decoder's own tokens through the exported encoder and step: every step's
    logits equal the full (uncached) teacher-forced pass's, and the cache grows by one."""
    eager = load_recognizer(tiny_checkpoint.checkpoint)
    runtime = ExportedRecognizer(exported.folder).runtime
    batch = eager.transform.batch([eager.transform.stem.fit(i) for i in images(tiny_checkpoint)])
    tokens = eager.decode(batch)
    start = torch.full_like(tokens[:, :1], eager.tokenizer.start_index)
    inputs = torch.cat((start, tokens[:, :-1]), 1)  # what each step was fed
    with torch.no_grad():
        expected = eager.network(batch, inputs).logits
        memory = eager.network.encode(batch)
        cross_k = torch.stack(
            [b.cross_attn.keys_values(memory)[0] for b in eager.network.decoder.blocks]
        )  # type: ignore[union-attr]
        _, ctc_log_probs = eager.network.encode_for_decoding(batch)
    outputs = runtime.encode(batch)
    cross = outputs[:2]
    assert np.allclose(np.asarray(cross[0]), cross_k.numpy(), atol=1e-5)
    assert ctc_log_probs is not None  # the tiny recognizer decodes jointly with its CTC head
    assert np.allclose(np.asarray(outputs[2]), ctc_log_probs.numpy(), atol=1e-4)
    manifest = json.loads((exported.folder / "model.json").read_text())["cache"]
    shape = (manifest["layers"], len(batch), manifest["kv_heads"], 0, manifest["dim_head"])
    cache = [torch.zeros(shape), torch.zeros(shape)]
    for pos in range(inputs.shape[1]):
        logits, *cache = runtime.step(inputs[:, pos : pos + 1], pos, *cache, *cross)
        assert cache[0].shape == (*shape[:3], pos + 1, shape[4])
        torch.testing.assert_close(logits, expected[:, pos], atol=1e-4, rtol=1e-4)


def test_predict_with_an_exported_model_prints_what_the_checkpoint_prints(
    tiny_checkpoint: Tiny,
    exported: Exported,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i, image in enumerate(images(tiny_checkpoint)):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    outputs = []
    for source in (
        ["--checkpoint", str(tiny_checkpoint.checkpoint)],
        ["--model", str(exported.folder)],
    ):
        cli.main(["predict", *source, "--batch-size", "3", str(tmp_path)])
        out, err = capsys.readouterr()
        assert err == ""
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == f"{tmp_path / '0.png'}\t{TEXTS[0]}"


def test_an_export_of_format_1_still_reads_as_it_did(
    tiny_checkpoint: Tiny, exported: Exported, tmp_path: Path
) -> None:
    """Format 1 manifests had no resize rule (their images are read by the lines' rule) and no
    decoder (they read with the attention decoder)."""
    folder = tmp_path / "v1"
    shutil.copytree(exported.folder, folder)
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["format_version"] == 4 and manifest.pop("decoder") == "joint"
    assert manifest["transform"].pop("resize") == "height"
    (folder / "model.json").write_text(json.dumps({**manifest, "format_version": 1}))
    old, new = ExportedRecognizer(folder), ExportedRecognizer(exported.folder)
    assert old.transform.params() == new.transform.params()
    assert old.predict_batch(images(tiny_checkpoint)) == new.predict_batch(images(tiny_checkpoint))


def test_export_from_the_command_line(
    tiny_checkpoint: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ts"
    ckpt = str(tiny_checkpoint.checkpoint)
    cli.main(["export", "--checkpoint", ckpt, "--format", "torchscript", "--out", str(out)])
    stdout, _ = capsys.readouterr()
    assert stdout == (
        f"wrote {out / 'encoder.pt'}, {out / 'decoder_step.pt'} and {out / 'model.json'}\n"
        f"wrote {out / 'README.md'}\n"  # the model card (tests/test_publish.py)
    )
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["tokenizer"]["charset"] == load_recognizer(ckpt).tokenizer.charset
    assert manifest["transform"] == {
        "height": 32,
        "width": 640,
        "crop_width": True,
        "resize": "height",
    }
    assert manifest["max_length"] == 24 and manifest["cache"]["layers"] == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "decoder_step.pt",
        "encoder.pt",
        "model.json",
    ]


def test_an_export_normalises_and_scores_page_text_as_its_checkpoint_does(
    tiny_checkpoint: Tiny, tmp_path: Path
) -> None:
    """A model whose labels were written in a Unicode form with a character map (a fine-tune
    on documents with a `charset_map`) exports both, so the text of its pages becomes the same
    labels with the export as with the checkpoint, and their readings score the same CER."""
    checkpoint = torch.load(tiny_checkpoint.checkpoint, weights_only=True)
    mapping = {"\u2044": "/"}  # NFKC writes ½ as 1, a fraction slash, 2
    checkpoint[CHECKPOINT_KEY]["tokenizer"] |= {"normalization": "NFKC", "mapping": mapping}
    fine_tune, out = tmp_path / "pages.ckpt", tmp_path / "exported"
    torch.save(checkpoint, fine_tune)
    cli.main(
        ["export", "--checkpoint", str(fine_tune), "--format", "torchscript", "--out", str(out)]
    )
    tokenizer = json.loads((out / "model.json").read_text())["tokenizer"]
    assert (tokenizer["normalization"], tokenizer["mapping"]) == ("NFKC", mapping)
    fullwidth = "Stunde".translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    page = write_page(tmp_path / "pages", "page", lines_of([f"½ {fullwidth}", "two"]))
    document = read_document(page)
    crops = [line_image(page_pixels(page, document.image), line) for line in document.lines]
    scores = []
    for model in (fine_tune, out):
        recognizer = load_recognizer(model)
        references = labels(document, recognizer.tokenizer)
        assert references == {"l0": "1/2 Stunde", "l1": "two"}
        scores.append(
            float(char_error_rate(recognizer.predict_batch(crops), [*references.values()]))
        )
    assert scores[0] == scores[1]


def test_a_broken_export_is_refused_in_one_line(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(exported.folder, broken)
    encoder = next(broken.glob("encoder.*"))
    encoder.write_bytes(encoder.read_bytes()[:1000])
    kind = {"onnx": "ONNX model", "torchscript": "TorchScript file"}[exported.format]
    cases = {
        broken: f"error: {encoder}: not a loadable {kind}",
        tmp_path: f"error: {tmp_path}: no model.json: not a folder written by export",
    }
    for folder, message in cases.items():
        with pytest.raises(SystemExit) as exit:
            cli.main(["predict", "--model", str(folder), "x.png"])
        _, err = capsys.readouterr()
        assert exit.value.code == 1 and err.startswith(message) and err.count("\n") == 1, err
