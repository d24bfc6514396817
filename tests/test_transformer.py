import pytest
import torch
from einops import repeat
from torch import nn

from text_recognizer.network.transformer import Block, Decoder
from text_recognizer.network.transformer.attention import CrossAttention
from text_recognizer.network.transformer.position import RotaryEmbedding, sinusoidal_2d

NUM_TOKENS = 20


def _decoder(kv_heads: int = 4, tie_embeddings: bool = False) -> Decoder:
    """Random weights large enough for sharp attention, where positions visibly matter."""
    torch.manual_seed(0)
    decoder = Decoder(
        num_tokens=NUM_TOKENS,
        dim=32,
        depth=2,
        heads=4,
        dim_head=8,
        max_length=16,
        kv_heads=kv_heads,
        tie_embeddings=tie_embeddings,
    )
    for module in decoder.modules():
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.3)
    return decoder.eval()


def _inputs(batch: int = 3, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randint(0, NUM_TOKENS, (batch, length)), torch.randn(batch, 10, 32)


def _step_logits(decoder: Decoder, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    decoder.setup_cache(memory)
    logits = torch.cat([decoder.step(tokens[:, [pos]], pos) for pos in range(tokens.shape[1])], 1)
    decoder.clear_cache()
    return logits


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_cached_steps_match_teacher_forcing(kv_heads: int) -> None:
    """Multi-head, grouped (2 of 4) and multi-query attention all decode exactly on the cache."""
    decoder = _decoder(kv_heads)
    tokens, memory = _inputs()
    with torch.inference_mode():
        expected = decoder(tokens, memory)
        assert expected.shape == (3, 12, NUM_TOKENS)
        torch.testing.assert_close(
            _step_logits(decoder, tokens, memory), expected, atol=1e-4, rtol=0
        )


def test_a_cached_step_takes_one_token_per_row() -> None:
    decoder = _decoder(kv_heads=2)
    tokens, memory = _inputs()
    decoder.setup_cache(memory)
    with pytest.raises(ValueError, match="a cached step decodes one token per row, got 5"):
        decoder.step(tokens[:, :5], 0)


def test_cached_step_rotates_by_absolute_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step at pos k matches teacher forcing, and would not with rotary read at offset 0."""
    decoder = _decoder()
    tokens, memory = _inputs(length=8)
    k = 7
    with torch.inference_mode():
        expected = decoder(tokens, memory)[:, k]
        decoder.setup_cache(memory)
        for pos in range(k):
            decoder.step(tokens[:, [pos]], pos)
        torch.testing.assert_close(decoder.step(tokens[:, [k]], k)[:, 0], expected)
        table = RotaryEmbedding.forward
        monkeypatch.setattr(decoder.rotary, "forward", lambda pos, n: table(decoder.rotary, 0, n))
        assert not torch.allclose(decoder.step(tokens[:, [k]], k)[:, 0], expected, atol=1e-2)


def test_decoder_is_causal() -> None:
    decoder = _decoder()
    tokens, memory = _inputs()
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % NUM_TOKENS
    with torch.inference_mode():
        a, b = decoder(tokens, memory), decoder(changed, memory)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_clear_cache_frees_every_layer() -> None:
    decoder = _decoder()
    tokens, memory = _inputs()
    with torch.inference_mode():
        decoder.setup_cache(memory)
        decoder.step(tokens[:, :1], 0)
    decoder.clear_cache()
    assert all(getattr(m, "cache", None) is None for m in decoder.modules())
    with pytest.raises(RuntimeError, match="setup_cache"):
        decoder.step(tokens[:, :1], 0)
    decoder.train()(tokens, memory).sum().backward()  # training runs after decoding


def test_grouped_attention_matches_repeated_keys_and_values() -> None:
    """Folding query groups into rows is the same as giving every query head its kv head."""
    torch.manual_seed(0)
    attn = CrossAttention(dim=32, heads=4, dim_head=8, kv_heads=2, dropout=0.0)
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    q = attn.split_heads(attn.to_q(x))
    k, v = (repeat(t, "b h s d -> b (h g) s d", g=2) for t in attn.keys_values(memory))
    weights = (q @ k.transpose(-1, -2) / 8**0.5).softmax(-1)
    expected = attn.to_out((weights @ v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(attn(x, memory), expected)


def test_tied_embeddings_share_one_parameter() -> None:
    tied, untied = _decoder(tie_embeddings=True), _decoder()
    assert tied.to_logits.weight is tied.token_emb.weight
    own = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert own == NUM_TOKENS * 32


def test_kv_heads_must_divide_heads() -> None:
    with pytest.raises(ValueError, match="must divide"):
        _decoder(kv_heads=3)


def test_encoder_block_is_bidirectional() -> None:
    torch.manual_seed(0)
    block = Block(32, 4, 8, 4, 2, 0.0, causal=False, cross_attend=False)
    x = torch.randn(1, 6, 32)
    y = block(x)
    x[:, -1] = 0
    assert not torch.allclose(block(x)[:, 0], y[:, 0])


def test_sinusoidal_2d_is_unique_per_position() -> None:
    emb = sinusoidal_2d(3, 5, 16, torch.device("cpu"), torch.float32)
    assert emb.shape == (15, 16)
    assert torch.cdist(emb, emb).add(torch.eye(15)).min() > 0.1
