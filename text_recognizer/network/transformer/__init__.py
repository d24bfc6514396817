"""Transformer parts: attention with a kv cache, rotary and 2D positions, blocks, the decoder."""

from text_recognizer.network.transformer.block import Block
from text_recognizer.network.transformer.decoder import Decoder

__all__ = ["Block", "Decoder"]
