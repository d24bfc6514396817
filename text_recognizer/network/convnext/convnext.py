"""ConvNeXt image encoder: anisotropic downsampling per stage, optional bottleneck attention."""

import torch
import torch.nn.functional as F  # noqa: N812
from einops import rearrange
from torch import Tensor, nn

from text_recognizer.network.transformer.block import Block
from text_recognizer.network.transformer.position import sinusoidal_2d


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (b, c, h, w) map; the permutes are free in channels-last."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class ConvNextBlock(nn.Module):
    """Depthwise 7x7 conv, LayerNorm, pointwise MLP with GELU, layer scale, residual."""

    def __init__(self, dim: int, ff_mult: float = 4, layer_scale: float | None = 1e-6) -> None:
        super().__init__()
        hidden = int(ff_mult * dim)
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.scale = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))
        if self.scale is not None:
            y = y * self.scale
        return x + y.permute(0, 3, 1, 2)


class ConvNext(nn.Module):
    """Stem, then per stage a downsampling (norm + conv with kernel = stride) and ConvNeXt blocks.

    Text is wide and short, so each stage has its own (sh, sw) stride: height can collapse while
    width keeps enough steps for the decoder (and CTC). `attn_depth` bidirectional transformer
    blocks at the bottleneck, with 2D sinusoidal positions, give every position global context.
    Output (b, dim * dim_mults[-1], h, w).
    """

    def __init__(
        self,
        dim: int,
        dim_mults: list[int],
        depths: list[int],
        downsampling: list[list[int]],
        attn_depth: int = 0,
        attn_heads: int = 8,
        attn_dim_head: int = 64,
        in_channels: int = 1,
        stem_kernel: list[int] = [7, 7],  # noqa: B006 (never mutated; Hydra passes lists)
        stem_stride: list[int] = [1, 1],  # noqa: B006
        ff_mult: float = 4,
        layer_scale: float | None = 1e-6,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not len(dim_mults) == len(depths) == len(downsampling):
            raise ValueError("dim_mults, depths and downsampling need one entry per stage")
        (kh, kw), (sh, sw) = stem_kernel, stem_stride
        padding = ((kh - sh) // 2, (kw - sw) // 2)
        self.stem = nn.Conv2d(in_channels, dim, (kh, kw), (sh, sw), padding)
        stages: list[nn.Module] = []
        in_dim = dim
        for mult, depth, (dh, dw) in zip(dim_mults, depths, downsampling, strict=True):
            out_dim = dim * mult
            stages += [
                LayerNorm2d(in_dim),
                nn.Conv2d(in_dim, out_dim, kernel_size=(dh, dw), stride=(dh, dw)),
                *(ConvNextBlock(out_dim, ff_mult, layer_scale) for _ in range(depth)),
            ]
            in_dim = out_dim
        self.stages = nn.Sequential(*stages)
        self.attn_blocks = nn.ModuleList(
            Block(in_dim, attn_heads, attn_dim_head, attn_heads, ff_mult, dropout, causal=False)
            for _ in range(attn_depth)
        )
        self.norm = LayerNorm2d(in_dim)
        self.out_dim = in_dim

    def forward(self, images: Tensor) -> Tensor:
        x = self.stages(self.stem(images.contiguous(memory_format=torch.channels_last)))
        if len(self.attn_blocks):
            _, c, h, w = x.shape
            x = rearrange(x, "b c h w -> b (h w) c") + sinusoidal_2d(h, w, c, x.device, x.dtype)
            for block in self.attn_blocks:
                x = block(x)
            x = rearrange(x, "b (h w) c -> b c h w", h=h)
        return self.norm(x)
