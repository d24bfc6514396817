"""ConvNeXt image encoder."""

from text_recognizer.network.convnext.convnext import ConvNext, ConvNextBlock, LayerNorm2d

__all__ = ["ConvNext", "ConvNextBlock", "LayerNorm2d"]
