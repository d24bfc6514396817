"""Image stems shared by training, validation and inference: one copy of the preprocessing."""

from text_recognizer.data.transforms.stem import EvalTransform, ImageStem, crop_to_content

__all__ = ["EvalTransform", "ImageStem", "crop_to_content"]
