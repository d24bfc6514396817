"""Plain nn.Modules of the recognizer; no Lightning or Hydra in here."""

from text_recognizer.network.conv_transformer import ConvTransformer, NetworkOutput
from text_recognizer.network.convnext import ConvNext
from text_recognizer.network.transformer import Decoder

__all__ = ["ConvNext", "ConvTransformer", "Decoder", "NetworkOutput"]
