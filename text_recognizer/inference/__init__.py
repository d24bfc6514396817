"""Inference from a checkpoint or exported files: images -> text, evaluation, export.
`load_recognizer` reads any model reference."""

from text_recognizer.errors import CheckpointError, ImageError, InferenceError
from text_recognizer.inference.models import load_recognizer
from text_recognizer.inference.recognizer import Prediction, Recognizer, TextRecognizer
from text_recognizer.spec import InferenceSpec

__all__ = [
    "CheckpointError",
    "ImageError",
    "InferenceError",
    "InferenceSpec",
    "Prediction",
    "Recognizer",
    "TextRecognizer",
    "load_recognizer",
]
