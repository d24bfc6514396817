"""`model.init_from`: another checkpoint's weights, loaded safely; with a changed charset the rows
of shared characters move to their new places, new characters keep their fresh rows and dropped
ones are left behind; what does not fit is named."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from fake_documents import lines_of, untrained_checkpoint, write_page
from helpers import compose_with

from text_recognizer.errors import CheckpointError, ConfigError
from text_recognizer.metadata.charset import CHARSET, SPECIAL_TOKENS
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.network.conv_transformer import ConvTransformer
from training.run import build

TOKEN_ROWS = ConvTransformer.TOKEN_ROWS


def finetune(tmp_path: Path, *overrides: str) -> LitTransformer:
    """The fine-tuning experiment's model, built as main.py builds it (seeded)."""
    torch.manual_seed(0)
    cfg = compose_with("+experiment=finetune_documents", *overrides, run_dir=tmp_path)
    _, model, _ = build(cfg, tmp_path)
    assert isinstance(model, LitTransformer)
    return model


def test_a_changed_charset_keeps_the_rows_of_shared_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = untrained_checkpoint(tmp_path / "base.ckpt")
    source = torch.load(base, weights_only=True)["state_dict"]
    write_page(tmp_path / "train", "p0", lines_of(["ſchön ist", "es hier"]))
    write_page(tmp_path / "val", "p1", lines_of(["ſo"]))
    write_page(tmp_path / "test", "p2", lines_of(["hier"]))
    own = [f"datamodule.{s}_sources=[{tmp_path / s}]" for s in ("train", "val", "test")]
    own.append("datamodule.keep_charset=false")
    fresh = finetune(tmp_path, "model.init_from=null", *own)
    model = finetune(tmp_path, f"model.init_from={base}", *own)
    tokens = model.tokenizer.tokens
    charset = model.tokenizer.charset
    assert set("ſö") <= set(charset) and "Z" not in charset
    old = (*SPECIAL_TOKENS, *CHARSET)
    weights, initial = model.network.state_dict(), fresh.network.state_dict()
    for key in TOKEN_ROWS:
        for i, token in enumerate(tokens):
            expected = (
                source[f"network.{key}"][old.index(token)] if token in old else initial[key][i]
            )
            assert torch.equal(weights[key][i], expected), (key, token)
    for key, value in weights.items():
        if key not in TOKEN_ROWS:
            assert torch.equal(value, source[f"network.{key}"]), key
    out = capsys.readouterr().out
    shared = "".join(c for c in charset if c in CHARSET)
    dropped = "".join(c for c in CHARSET if c not in charset)
    assert f"init_from {base}: " in out
    assert (
        f"characters: {len(shared)} reused, 2 added 'öſ' (initialised afresh), "
        f"{len(dropped)} dropped {dropped!r}"
    ) in out


def test_a_network_of_another_shape_takes_what_fits_and_names_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = untrained_checkpoint(tmp_path / "base.ckpt")
    deeper = ["network.decoder.depth=3", "network.encoder.dim=64"]
    torch.manual_seed(0)
    cfg = compose_with(f"model.init_from={base}", *deeper, run_dir=tmp_path)
    _, model, _ = build(cfg, tmp_path)
    source = torch.load(base, weights_only=True)["state_dict"]
    weights = model.state_dict()
    assert torch.equal(
        weights["network.decoder.blocks.1.attn.to_qkv.weight"],
        source["network.decoder.blocks.1.attn.to_qkv.weight"],
    )
    out = capsys.readouterr().out
    assert "left at their initialisation: encoder." in out and "decoder.blocks.2." in out


def test_a_checkpoint_that_fits_nothing_or_is_unsafe_is_refused(tmp_path: Path) -> None:
    for i in range(3):
        write_page(tmp_path / "pages", f"p{i}", lines_of(["a line"]))
    pages = [f"datamodule.sources=[{tmp_path / 'pages'}]"]
    nothing = untrained_checkpoint(tmp_path / "nothing.ckpt")
    checkpoint = torch.load(nothing, weights_only=True)
    checkpoint["state_dict"] = {f"other.{k}": v for k, v in checkpoint["state_dict"].items()}
    torch.save(checkpoint, nothing)
    with pytest.raises(ConfigError, match=r"model.init_from: nothing in .*nothing.ckpt fits"):
        finetune(tmp_path, f"model.init_from={nothing}", *pages)
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "payload": argparse.Namespace()}, unsafe)
    with pytest.raises(CheckpointError, match=r"unsafe.ckpt: refused: unpickling it would call"):
        finetune(tmp_path, f"model.init_from={unsafe}", *pages)
