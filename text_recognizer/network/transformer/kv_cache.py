"""Keys and values kept between decoding steps, so each step costs one token, not the prefix."""

import torch
from torch import Tensor


class KVCache:
    """Keys and values (batch, kv_heads, length, dim_head) of one attention layer.

    Preallocated for the longest sequence, so a step writes in place instead of growing a tensor.
    """

    def __init__(self, k: Tensor, v: Tensor) -> None:
        self.k = k
        self.v = v

    @classmethod
    def empty(
        cls, batch: int, kv_heads: int, max_length: int, dim_head: int, like: Tensor
    ) -> "KVCache":
        """Zeros with the dtype and device of `like`, which follow autocast and `.to()`."""
        shape = (batch, kv_heads, max_length, dim_head)
        return cls(like.new_zeros(shape), like.new_zeros(shape))

    def update(self, pos: int | Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write `k`, `v` at positions pos..; return keys and values of all positions so far."""
        end = pos + k.shape[2]
        self.k[:, :, pos:end] = k
        self.v[:, :, pos:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]

    def reorder(self, rows: Tensor) -> None:
        """Row i becomes row `rows[i]`: beam search moves each hypothesis's keys and values to
        the slot of the hypotheses that extend it."""
        self.k = self.k.index_select(0, rows)
        self.v = self.v.index_select(0, rows)


class GrowingKVCache(KVCache):
    """Holds exactly the positions so far and grows by concatenation instead of in-place writes.

    A traced or exported decoding step takes this cache as an input and returns its successor as
    an output, which a preallocated buffer written in place cannot be; `pos` must equal its length.
    """

    def update(self, pos: int | Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        self.k = torch.cat((self.k, k), dim=2)
        self.v = torch.cat((self.v, v), dim=2)
        return self.k, self.v
