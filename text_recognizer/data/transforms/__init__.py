"""Image stems shared by training, validation and inference: one copy of the preprocessing."""

from text_recognizer.data.transforms.stem import ImageStem, crop_to_content

__all__ = ["ImageStem", "crop_to_content"]
