"""Image stems shared by training, validation and inference: one copy of the preprocessing."""

from text_recognizer.data.transforms.stem import (
    RESIZE_RULES,
    EvalTransform,
    ImageStem,
    Resize,
    crop_to_content,
)

__all__ = [
    "RESIZE_RULES",
    "EvalTransform",
    "ImageStem",
    "Resize",
    "crop_to_content",
]
