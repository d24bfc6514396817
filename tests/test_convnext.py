import pytest
import torch
from torch import nn

from text_recognizer.network.convnext import ConvNext, ConvNextBlock, LayerNorm2d


def test_layer_norm_2d_normalizes_channels() -> None:
    x = torch.randn(2, 8, 3, 5)
    norm = LayerNorm2d(8)
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)


@pytest.mark.parametrize("layer_scale", [1e-6, None])
def test_block_keeps_shape_and_starts_near_identity(layer_scale: float | None) -> None:
    block = ConvNextBlock(8, layer_scale=layer_scale)
    x = torch.randn(2, 8, 6, 10)
    y = block(x)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-4) == (layer_scale is not None)


@pytest.mark.parametrize(
    ("image", "kwargs", "out_shape"),
    [
        # line: patchify stem, then height collapses while width stays
        (
            (1, 16, 128),
            dict(stem_kernel=[4, 4], stem_stride=[4, 4], downsampling=[[1, 1], [2, 1], [2, 1]]),
            (32, 1, 32),
        ),
        # paragraph: (2, 2) steps, then (2, 1) steps, attention at the bottleneck
        (
            (1, 64, 64),
            dict(downsampling=[[2, 2], [2, 2], [2, 1]], attn_depth=1),
            (32, 8, 16),
        ),
    ],
)
def test_anisotropic_downsampling_shapes(
    image: tuple[int, int, int], kwargs: dict, out_shape: tuple[int, int, int]
) -> None:
    encoder = ConvNext(dim=8, dim_mults=[1, 2, 4], depths=[1, 1, 1], attn_heads=2, **kwargs)
    assert encoder(torch.randn(2, *image)).shape == (2, *out_shape)
    assert encoder.out_dim == out_shape[0]


def test_bottleneck_attention_is_global_and_size_agnostic() -> None:
    torch.manual_seed(0)
    encoder = ConvNext(
        dim=8, dim_mults=[1, 2], depths=[1, 1], downsampling=[[2, 2], [2, 2]], attn_depth=1
    ).eval()
    x = torch.randn(1, 1, 32, 96)
    y = encoder(x)
    x[..., -4:] = 0  # only the rightmost columns change...
    assert not torch.allclose(encoder(x)[..., 0], y[..., 0])  # ...yet the leftmost output moves
    assert encoder(torch.randn(1, 1, 40, 72)).shape == (1, 16, 10, 18)


def test_stage_lists_must_match() -> None:
    with pytest.raises(ValueError, match="one entry per stage"):
        ConvNext(dim=8, dim_mults=[1, 2], depths=[1], downsampling=[[2, 2], [2, 2]])
