"""Pre-norm transformer block, shared by the decoder and the encoder's bottleneck."""

import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from text_recognizer.network.transformer.attention import CrossAttention, SelfAttention


class FeedForward(nn.Module):
    """SwiGLU: a SiLU gate times a linear unit, hidden size `mult * dim`."""

    def __init__(self, dim: int, mult: float, dropout: float) -> None:
        super().__init__()
        hidden = int(mult * dim)
        self.to_hidden = nn.Linear(dim, 2 * hidden, bias=False)
        self.to_out = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.to_hidden(x).chunk(2, dim=-1)
        return self.dropout(self.to_out(F.silu(gate) * value))


class Block(nn.Module):
    """Self-attention, then cross-attention to a memory if `cross_attend`, then SwiGLU."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        kv_heads: int,
        ff_mult: float,
        dropout: float,
        causal: bool = True,
        cross_attend: bool = False,
    ) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = SelfAttention(dim, heads, dim_head, kv_heads, dropout, causal)
        self.cross_norm = nn.RMSNorm(dim) if cross_attend else None
        self.cross_attn = (
            CrossAttention(dim, heads, dim_head, kv_heads, dropout) if cross_attend else None
        )
        self.ff_norm = nn.RMSNorm(dim)
        self.ff = FeedForward(dim, ff_mult, dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        pos: int | Tensor | None = None,
    ) -> Tensor:
        """`pos` selects cached decoding (see `SelfAttention`); there a None memory is cached."""
        x = x + self.attn(self.attn_norm(x), rope, pos)
        if self.cross_attn is not None and self.cross_norm is not None:
            x = x + self.cross_attn(self.cross_norm(x), memory)
        return x + self.ff(self.ff_norm(x))

    def setup_cache(self, memory: Tensor, max_length: int, rows_per_image: int = 1) -> None:
        if self.cross_attn is None:
            raise RuntimeError("only decoder blocks, which cross-attend, decode on a cache")
        self.cross_attn.setup_cache(memory)
        rows = memory.shape[0] * rows_per_image
        self.attn.setup_cache(rows, max_length, like=self.cross_attn.cached().k)

    def clear_cache(self) -> None:
        self.attn.clear_cache()
        if self.cross_attn is not None:
            self.cross_attn.clear_cache()
