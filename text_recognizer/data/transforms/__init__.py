"""Image stems shared by training, validation and inference: one copy of the preprocessing."""

from text_recognizer.data.transforms.stem import ImageStem

__all__ = ["ImageStem"]
