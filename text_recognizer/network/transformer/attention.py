"""Self- and cross-attention through `scaled_dot_product_attention`, with grouped keys/values."""

import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from text_recognizer.network.transformer.kv_cache import KVCache
from text_recognizer.network.transformer.position import apply_rotary


class Attention(nn.Module):
    """Shared by both kinds: `heads` query heads read `kv_heads` key/value heads (1 = multi-query),
    which shrinks the cache and the memory traffic of every decoding step."""

    def __init__(self, dim: int, heads: int, dim_head: int, kv_heads: int, dropout: float) -> None:
        super().__init__()
        if heads % kv_heads:
            raise ValueError(f"kv_heads {kv_heads} must divide heads {heads}")
        self.heads = heads
        self.kv_heads = kv_heads
        self.dim_head = dim_head
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.cache: KVCache | None = None

    def split_heads(self, x: Tensor) -> Tensor:
        """(b, t, n * dim_head) -> (b, n, t, dim_head)."""
        b, t, _ = x.shape
        return x.view(b, t, -1, self.dim_head).transpose(1, 2)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, is_causal: bool = False) -> Tensor:
        """`q` (rows, heads, t, d) against `k`, `v` (b, kv_heads, s, d); rows is b, or a multiple
        of it where several rows read one memory (beam search's hypotheses of one image)."""
        rows, _, t, d = q.shape
        if is_causal:
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=self.kv_heads != self.heads
            )
        elif k.shape[0] == rows:
            # Unmasked query rows are independent, so each group's heads fold into the rows of
            # its one kv head: keys/values are never repeated, and a decoding step hands the CPU
            # kernel several rows at once (about 2x faster than enable_gqa there).
            out = F.scaled_dot_product_attention(q.reshape(rows, self.kv_heads, -1, d), k, v)
        else:
            # The same fold over the rows that share one memory: it is read once for all of them.
            b = k.shape[0]
            share = q.view(b, rows // b, self.kv_heads, -1, d).transpose(1, 2)
            out = F.scaled_dot_product_attention(share.reshape(b, self.kv_heads, -1, d), k, v)
            out = out.view(b, self.kv_heads, rows // b, -1, d).transpose(1, 2)
        out = out.reshape(rows, self.heads, t, d).transpose(1, 2).flatten(2)
        return self.dropout(self.to_out(out))

    def cached(self) -> KVCache:
        if self.cache is None:
            raise RuntimeError("no kv cache: call the decoder's setup_cache before step")
        return self.cache

    def clear_cache(self) -> None:
        self.cache = None


class SelfAttention(Attention):
    """Self-attention; causal with rotary positions in the decoder, bidirectional in the encoder."""

    def __init__(
        self, dim: int, heads: int, dim_head: int, kv_heads: int, dropout: float, causal: bool
    ) -> None:
        super().__init__(dim, heads, dim_head, kv_heads, dropout)
        self.causal = causal
        self.to_qkv = nn.Linear(dim, (heads + 2 * kv_heads) * dim_head, bias=False)

    def forward(
        self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None, pos: int | Tensor | None = None
    ) -> Tensor:
        """`pos` is the absolute position of the one new token x (b, 1, dim) when decoding on the
        cache, None otherwise."""
        qk, v = self.split_heads(self.to_qkv(x)).split(
            (self.heads + self.kv_heads, self.kv_heads), dim=1
        )
        if rope is not None:
            qk = apply_rotary(qk, *rope)
        q, k = qk.split((self.heads, self.kv_heads), dim=1)
        if pos is None:
            return self.attend(q, k, v, is_causal=self.causal)
        if x.shape[1] != 1:
            raise ValueError(f"a cached step decodes one token per row, got {x.shape[1]}")
        k, v = self.cached().update(pos, k, v)
        return self.attend(q, k, v)  # the new token sees every cached position

    def setup_cache(self, batch: int, max_length: int, like: Tensor) -> None:
        self.cache = KVCache.empty(batch, self.kv_heads, max_length, self.dim_head, like)


class CrossAttention(Attention):
    """Attention from the tokens to the image memory, whose keys/values are fixed per image."""

    def __init__(self, dim: int, heads: int, dim_head: int, kv_heads: int, dropout: float) -> None:
        super().__init__(dim, heads, dim_head, kv_heads, dropout)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * kv_heads * dim_head, bias=False)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.split_heads(self.to_kv(memory)).chunk(2, dim=1)
        return k, v

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        """Attend to `memory`, or with None to the keys/values `setup_cache` computed once."""
        if memory is None:
            cache = self.cached()
            k, v = cache.k, cache.v
        else:
            k, v = self.keys_values(memory)
        return self.attend(self.split_heads(self.to_q(x)), k, v)

    def setup_cache(self, memory: Tensor) -> None:
        self.cache = KVCache(*(t.contiguous() for t in self.keys_values(memory)))
