"""Position information for attention, which on its own is blind to order and layout."""

import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Cos/sin tables up to `max_length`, sliced by absolute position so a cached step rotates
    its query and key exactly as the full sequence would."""

    cos: Tensor
    sin: Tensor

    def __init__(self, dim_head: int, max_length: int, base: float = 10_000.0) -> None:
        super().__init__()
        inv_freq = base ** -(torch.arange(0, dim_head, 2, dtype=torch.float) / dim_head)
        angles = torch.outer(torch.arange(max_length, dtype=torch.float), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, pos: int | Tensor, length: int) -> tuple[Tensor, Tensor]:
        """Tables for positions pos..pos+length-1. A tensor `pos` (an exported step's input)
        indexes them, so the position stays an input of the graph instead of a constant."""
        if isinstance(pos, Tensor):
            index = pos + torch.arange(length, device=pos.device)
            return self.cos[index], self.sin[index]
        if pos + length > self.cos.shape[0]:
            raise ValueError(f"positions up to {pos + length} exceed max_length {len(self.cos)}")
        return self.cos[pos : pos + length], self.sin[pos : pos + length]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (i, i + d/2) of the last dim of `x` (..., t, d) by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat((-x2, x1), dim=-1) * sin.to(x.dtype)


def sinusoidal_2d(
    height: int, width: int, dim: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Fixed (height * width, dim) embedding, half of `dim` for rows and half for columns.

    Computed on the fly, so any image size works and no table ties the model to one shape.
    """
    if dim % 4:
        raise ValueError(f"dim {dim} must be divisible by 4")
    quarter = dim // 4
    inv_freq = 10_000.0 ** -(torch.arange(quarter, device=device, dtype=torch.float) / quarter)
    rows = torch.outer(torch.arange(height, device=device, dtype=torch.float), inv_freq)
    cols = torch.outer(torch.arange(width, device=device, dtype=torch.float), inv_freq)
    rows = torch.cat((rows.sin(), rows.cos()), dim=-1)[:, None].expand(height, width, 2 * quarter)
    cols = torch.cat((cols.sin(), cols.cos()), dim=-1)[None].expand(height, width, 2 * quarter)
    return torch.cat((rows, cols), dim=-1).reshape(height * width, dim).to(dtype)
