"""Autoregressive token decoder over an image memory."""

import torch
from torch import Tensor, nn

from text_recognizer.network.transformer.block import Block
from text_recognizer.network.transformer.position import RotaryEmbedding


class Decoder(nn.Module):
    """Causal transformer decoder: rotary self-attention, cross-attention to the memory, SwiGLU.

    Two ways through the same weights: `forward` for teacher forcing, and `setup_cache` + `step`
    for decoding one token at a time on per-layer kv caches.
    """

    def __init__(
        self,
        num_tokens: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        max_length: int,
        kv_heads: int | None = None,
        ff_mult: float = 4,
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        absolute_positions: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.max_length = max_length
        self.token_emb = nn.Embedding(num_tokens, dim)
        # Rotary tells self-attention how far apart tokens are, but cross-attention queries also
        # need to know how far along the line they are to find their place in the image: a
        # learned absolute position makes that alignment much quicker to learn.
        self.pos_emb = nn.Embedding(max_length, dim) if absolute_positions else None
        self.rotary = RotaryEmbedding(dim_head, max_length)
        self.blocks = nn.ModuleList(
            Block(dim, heads, dim_head, kv_heads or heads, ff_mult, dropout, cross_attend=True)
            for _ in range(depth)
        )
        # The same blocks, typed, for the cache calls of every decoding step.
        self.cached_blocks = [block for block in self.blocks if isinstance(block, Block)]
        self.norm = nn.RMSNorm(dim)
        self.to_logits = nn.Linear(dim, num_tokens)
        self.apply(_init_weights)
        if tie_embeddings:
            self.to_logits.weight = self.token_emb.weight

    def forward(self, tokens: Tensor, memory: Tensor) -> Tensor:
        """Logits (b, t, num_tokens) at every position of `tokens` (b, t), memory (b, s, dim)."""
        return self._logits(tokens, memory, None)

    def step(self, tokens: Tensor, pos: int | Tensor) -> Tensor:
        """Logits (b, 1, num_tokens) for one new token per row, `tokens` (b, 1), at position
        `pos`; earlier ones are in the cache. `pos` is an int when decoding in Python, a 0-d
        tensor in an exported step."""
        return self._logits(tokens, None, pos)

    def _logits(self, tokens: Tensor, memory: Tensor | None, pos: int | Tensor | None) -> Tensor:
        start, length = 0 if pos is None else pos, tokens.shape[1]
        rope = self.rotary(start, length)
        x = self.token_emb(tokens)
        if self.pos_emb is not None:
            x = x + self._positions(self.pos_emb, start, length)
        for block in self.blocks:
            x = block(x, memory, rope, pos)
        return self.to_logits(self.norm(x))

    @staticmethod
    def _positions(table: nn.Embedding, start: int | Tensor, length: int) -> Tensor:
        """Learned positions start..start+length-1: a slice of the table when decoding in Python
        (no index tensor to build each step), an index where `start` is an exported step's
        input, so that it stays an input of the graph."""
        if isinstance(start, Tensor):
            return table(start + torch.arange(length, device=start.device))
        return table.weight[start : start + length]

    def setup_cache(
        self, memory: Tensor, max_length: int | None = None, rows_per_image: int = 1
    ) -> None:
        """Compute the memory's keys/values once and preallocate self-attention caches for
        `rows_per_image` rows per image (beam search's hypotheses, in image order), which all
        read their image's one copy of the memory."""
        max_length = max_length or self.max_length
        if max_length > self.max_length:
            raise ValueError(f"max_length {max_length} exceeds the decoder's {self.max_length}")
        for block in self.cached_blocks:
            block.setup_cache(memory, max_length, rows_per_image)

    def reorder_cache(self, rows: Tensor) -> None:
        """Row i of every self-attention cache becomes row `rows[i]` (beam search). The memory's
        keys/values are not moved: beam search reorders rows only among one image's hypotheses."""
        for block in self.cached_blocks:
            block.attn.cached().reorder(rows)

    def clear_cache(self) -> None:
        """Free the caches; `forward` never reads them, so this is about memory, not correctness."""
        for block in self.cached_blocks:
            block.clear_cache()


def _init_weights(module: nn.Module) -> None:
    """Small normal init (GPT-2): default init gives tied embeddings logits far too large."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
