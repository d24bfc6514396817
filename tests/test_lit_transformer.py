"""The training loop's losses and its refusal to go on with a broken loss."""

import pytest
import torch
from helpers import tiny_model

from text_recognizer.decode import BeamOptions, beam_decode
from text_recognizer.errors import ConfigError
from text_recognizer.model.errors import NonFiniteLossError
from text_recognizer.model.lit_transformer import LitTransformer
from text_recognizer.tokenizer import Tokenizer

TOKENIZER = Tokenizer()


def batch(texts: list[str], length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.stack([TOKENIZER.encode(t, length) for t in texts])
    return torch.rand(len(texts), 1, 16, 64), targets


def test_extra_padding_changes_no_loss() -> None:
    model = tiny_model()
    images, targets = batch(["ab", "cde f"])
    _, padded = batch(["ab", "cde f"], length=40)
    short, long = model._losses(images, targets), model._losses(images, padded)
    for key in ("ce", "ctc", "loss"):
        assert torch.allclose(short[key], long[key]), key


def test_ctc_is_added_with_its_weight() -> None:
    images, targets = batch(["ab", "cde f"])
    losses = tiny_model(ctc_weight=0.5)._losses(images, targets)
    assert losses["ctc"] > 0
    assert torch.allclose(losses["loss"], losses["ce"] + 0.5 * losses["ctc"])
    assert "ctc" not in tiny_model(ctc_weight=0.0)._losses(images, targets)


def test_a_non_finite_loss_stops_training_naming_the_step() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.network.decoder.to_logits.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="at step 0"):
        model.training_step(batch(["ab"]), 0)


def test_forward_reads_text_from_images() -> None:
    model = tiny_model().eval()
    texts = model(torch.rand(3, 1, 16, 64))
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_model_beam_decodes_validation_by_beam_search() -> None:
    model = tiny_model().eval()
    images = torch.rand(3, 1, 16, 64)
    greedy = model.predict_tokens(images)
    model.beam = 3
    beam = model.predict_tokens(images)
    expected = beam_decode(model.network, images, BeamOptions(3), model.max_output_length)
    assert torch.equal(beam, expected) and beam.shape[0] == greedy.shape[0] == 3
    with pytest.raises(ConfigError, match="beam must be at least 1"):
        LitTransformer(model.network, model.optimizer_factory, beam=0)
