from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from text_recognizer.decode import (
    BeamOptions,
    beam_decode,
    beam_decode_reference,
    greedy_decode,
    greedy_decode_reference,
)
from text_recognizer.network import ConvNext, ConvTransformer, Decoder

NUM_TOKENS, PAD, START, END = 20, 0, 1, 2
MAX_LENGTH = 12
IMAGES = {"line": (1, 16, 128), "paragraph": (1, 64, 64)}


def _network(
    shape: str,
    kv_heads: int = 2,
    ctc_head: bool = False,
    weight_std: float | None = 0.3,
    ctc_decode_weight: float = 0.0,
) -> ConvTransformer:
    """Tiny network; `weight_std` re-draws linear and embedding weights so that random networks
    attend sharply and decode differently per image, which makes cache bugs visible."""
    torch.manual_seed(0)
    if shape == "line":  # patchify stem, height collapses to 1, width 128 / 4
        encoder = ConvNext(
            dim=8,
            dim_mults=[1, 2, 4],
            depths=[1, 1, 1],
            downsampling=[[1, 1], [2, 1], [2, 1]],
            stem_kernel=[4, 4],
            stem_stride=[4, 4],
        )
    else:  # (2, 2) steps then (2, 1) steps, attention at the bottleneck
        encoder = ConvNext(
            dim=8,
            dim_mults=[1, 2, 4, 4],
            depths=[1, 1, 1, 1],
            downsampling=[[2, 2], [2, 2], [2, 1], [2, 1]],
            attn_depth=1,
            attn_heads=2,
            attn_dim_head=16,
        )
    decoder = Decoder(
        num_tokens=NUM_TOKENS,
        dim=32,
        depth=2,
        heads=4,
        dim_head=8,
        max_length=16,
        kv_heads=kv_heads,
    )
    network = ConvTransformer(
        encoder,
        decoder,
        NUM_TOKENS,
        PAD,
        START,
        END,
        MAX_LENGTH,
        ctc_head=ctc_head or bool(ctc_decode_weight),
        ctc_memory=bool(ctc_decode_weight),
        ctc_decode_weight=ctc_decode_weight,
    )
    for module in network.modules():
        if weight_std and isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=weight_std)
    return network.eval()


def _teacher_inputs(tokens: torch.Tensor) -> torch.Tensor:
    return torch.cat((torch.full_like(tokens[:, :1], START), tokens[:, :-1]), 1)


def _images_ending_at_different_steps(
    network: ConvTransformer, shape: str, batch: int
) -> tuple[torch.Tensor, list[int]]:
    """Random images, and a per-image bias on the end logit so each one ends at its own step.

    With the end token suppressed the greedy path is fixed; an image then ends at the first step
    where its margin (best other logit minus end logit) drops below its bias. Any step whose
    margin is a clear record low can be picked so; candidates are drawn until `batch` images
    have different ones.
    """
    candidates = torch.randn(8 * batch, *IMAGES[shape])
    bias = network.decoder.to_logits.bias
    with torch.no_grad():
        bias[END] = float("-inf")
        tokens = greedy_decode_reference(network, candidates, stop_at_end=False)
        bias[END] = 0.0
        logits = network(candidates, _teacher_inputs(tokens)).logits
    is_end = torch.arange(NUM_TOKENS) == END
    margins = logits.masked_fill(is_end, float("-inf")).amax(-1) - logits[..., END]
    chosen: list[int] = []
    steps: list[int] = []
    end_bias: list[float] = []
    for i, row in enumerate(margins.tolist()):
        records = {t for t in range(MAX_LENGTH - 1) if row[t] < min(row[:t], default=1e9) - 0.1}
        if free := records - set(steps):
            step = max(free)
            chosen.append(i)
            steps.append(step)
            end_bias.append((row[step] + min(row[:step], default=row[step] + 2)) / 2)
        if len(chosen) == batch:
            break
    else:
        raise AssertionError("too few images end at different steps; change the seed")
    per_image = torch.tensor(end_bias)[:, None, None]

    def bias_end(_module: nn.Module, _inputs: object, logits: torch.Tensor) -> torch.Tensor:
        # Beam search decodes each image's hypotheses as consecutive rows.
        rows = per_image.repeat_interleave(logits.shape[0] // len(per_image), 0)
        return logits + torch.where(is_end, rows, 0.0)

    network.decoder.to_logits.register_forward_hook(bias_end)
    return candidates[chosen], steps


@pytest.mark.parametrize("shape", ["line", "paragraph"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_cached_decoding_matches_reference(shape: str, batch: int, kv_heads: int) -> None:
    network = _network(shape, kv_heads)
    images, end_steps = _images_ending_at_different_steps(network, shape, batch)

    tokens = greedy_decode(network, images)
    torch.testing.assert_close(tokens, greedy_decode_reference(network, images), rtol=0, atol=0)
    assert tokens.shape == (batch, max(end_steps) + 1)
    for row, end in zip(tokens, end_steps, strict=True):
        assert row[end] == END and END not in row[:end] and START not in row
        assert (row[end + 1 :] == PAD).all()

    full = greedy_decode(network, images, stop_at_end=False)
    assert full.shape == (batch, MAX_LENGTH)
    torch.testing.assert_close(full[:, : tokens.shape[1]], tokens, rtol=0, atol=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_joint_ctc_decoding_is_the_same_cached_and_changes_the_reading(batch: int) -> None:
    """With the CTC head's reading in the memory and half the say in each choice, the cache
    still decodes exactly as the reference, and the CTC share changes what is read."""
    network = _network("line", ctc_decode_weight=0.5)
    images = torch.randn(batch, *IMAGES["line"])
    joint = greedy_decode(network, images, stop_at_end=False)
    torch.testing.assert_close(
        joint, greedy_decode_reference(network, images, stop_at_end=False), rtol=0, atol=0
    )
    network.ctc_decode_weight = 0.0
    assert not torch.equal(joint, greedy_decode(network, images, stop_at_end=False))


@pytest.mark.parametrize("shape", ["line", "paragraph"])
def test_step_logits_match_teacher_forcing(shape: str) -> None:
    network = _network(shape)
    images = torch.randn(3, *IMAGES[shape])
    inputs = _teacher_inputs(greedy_decode(network, images, stop_at_end=False))
    with torch.inference_mode():
        expected = network(images, inputs).logits
        network.decoder.setup_cache(network.encode(images))
        steps = [network.decoder.step(inputs[:, [pos]], pos) for pos in range(MAX_LENGTH)]
        network.decoder.clear_cache()
    torch.testing.assert_close(torch.cat(steps, 1), expected, atol=1e-4, rtol=0)


def test_ctc_head_scores_each_encoder_column() -> None:
    images, tokens = torch.randn(2, *IMAGES["line"]), torch.randint(0, NUM_TOKENS, (2, 7))
    output = _network("line", ctc_head=True)(images, tokens)
    assert output.logits.shape == (2, 7, NUM_TOKENS)
    assert output.ctc_logits is not None and output.ctc_logits.shape == (2, 32, NUM_TOKENS)
    assert _network("line")(images, tokens).ctc_logits is None


def test_memory_is_one_row_per_feature_position() -> None:
    network = _network("paragraph")
    assert network.encode(torch.randn(2, *IMAGES["paragraph"])).shape == (2, 4 * 16, 32)


class Features(nn.Identity):
    """An encoder that passes 32-channel features through."""

    out_dim = 32


def test_the_memory_width_is_read_off_the_encoder_and_decoder() -> None:
    decoder = Decoder(NUM_TOKENS, 48, 1, 4, 8, max_length=8)
    network = ConvTransformer(Features(), decoder, NUM_TOKENS, PAD, START, END, 8, ctc_head=True)
    assert network.to_memory.in_features == 32 and network.to_memory.out_features == 48
    assert network.ctc_head is not None and network.ctc_head.in_features == 32
    with pytest.raises(ValueError, match=r"the encoder \(Identity\) has no out_dim"):
        ConvTransformer(nn.Identity(), decoder, NUM_TOKENS, PAD, START, END, 8)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_output_length": 9}, "exceeds the decoder"),
        ({"ctc_decode_weight": 0.5}, "need ctc_head"),
        ({"ctc_memory": True}, "need ctc_head"),
        ({"ctc_head": True, "ctc_decode_weight": 1.5}, "must be in"),
    ],
)
def test_inconsistent_options_are_refused(options: dict[str, Any], message: str) -> None:
    decoder = Decoder(NUM_TOKENS, 32, 1, 4, 8, max_length=8)
    arguments = {"max_output_length": 8, **options}
    with pytest.raises(ValueError, match=message):
        ConvTransformer(Features(), decoder, NUM_TOKENS, PAD, START, END, **arguments)


def test_tiny_network_overfits_one_batch() -> None:
    """Teacher-forced cross-entropy + AdamW learns 4 distinct labels to exact greedy match."""
    network = _network("line", weight_std=None)
    torch.manual_seed(0)
    images = torch.randn(4, *IMAGES["line"])
    labels = [torch.randint(3, NUM_TOKENS, (n,)).tolist() for n in (3, 4, 5, 6)]
    targets = torch.full((4, 8), PAD)
    for row, label in zip(targets, labels, strict=True):
        row[: len(label) + 2] = torch.tensor([START, *label, END])
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3)
    network.train()
    for _ in range(150):
        logits = network(images, targets[:, :-1]).logits
        loss = F.cross_entropy(logits.transpose(1, 2), targets[:, 1:], ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
    decoded = greedy_decode(network, images)
    torch.testing.assert_close(decoded, targets[:, 1 : decoded.shape[1] + 1], rtol=0, atol=0)


@pytest.mark.parametrize("ctc_decode_weight", [0.0, 0.5])
def test_beam_of_width_1_reads_what_greedy_reads(ctc_decode_weight: float) -> None:
    """Images that end at different steps, with and without the CTC head's share."""
    network = _network("line", ctc_decode_weight=ctc_decode_weight)
    images, _ = _images_ending_at_different_steps(network, "line", 3)
    beam = beam_decode(network, images, BeamOptions(width=1))
    torch.testing.assert_close(beam, greedy_decode(network, images), rtol=0, atol=0)


class _FavourToken:
    """A toy language model that likes one token after another: it changes the beam's choices,
    and depends on each row's history, so a misplaced row would show."""

    def __init__(self, after: int, token: int) -> None:
        self.after, self.token = after, token

    def score(self, tokens: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        liked = (tokens[:, -1:] == self.after) & (candidates == self.token)
        return torch.where(liked, 0.0, -1.0).double()


@pytest.mark.parametrize("ctc_decode_weight", [0.0, 0.5])
@pytest.mark.parametrize("lm", [None, _FavourToken(5, 7)])
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_beam_search_on_the_cache_matches_recomputing_the_prefix(
    ctc_decode_weight: float, lm: _FavourToken | None, kv_heads: int
) -> None:
    """The cached search reads each image's memory once for all its hypotheses; the reference
    repeats the memory per hypothesis."""
    network = _network("line", kv_heads=kv_heads, ctc_decode_weight=ctc_decode_weight)
    images, _ = _images_ending_at_different_steps(network, "line", 3)
    options = BeamOptions(width=4, lm=lm, lm_weight=2.0 if lm else 0.0)
    cached = beam_decode(network, images, options)
    torch.testing.assert_close(
        cached, beam_decode_reference(network, images, options), rtol=0, atol=0
    )
    assert cached.shape[0] == 3


def test_beam_search_finds_a_better_scored_reading_than_greedy() -> None:
    """On random networks a wider beam reads some images differently from greedy, and never
    with a lower total log probability under the decoder (no CTC, no normalisation)."""
    network = _network("line")
    images = torch.randn(6, *IMAGES["line"])
    greedy = greedy_decode(network, images)
    beam = beam_decode(network, images, BeamOptions(width=5, length_norm=0.0))

    def log_prob(tokens: torch.Tensor) -> torch.Tensor:
        inputs = _teacher_inputs(tokens)
        with torch.inference_mode():
            logits = network(images, inputs).logits.double().log_softmax(-1)
        chosen = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        ended = (tokens == END).long().cumsum(1)
        mask = (ended == 0) | ((ended == 1) & (tokens == END))  # up to the end token
        return (chosen * mask).sum(1)

    assert (log_prob(beam) >= log_prob(greedy) - 1e-9).all()
    assert not torch.equal(beam[:, : greedy.shape[1]], greedy)
