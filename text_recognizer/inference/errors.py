"""Errors a user's input causes, reported as one line naming the file and the problem."""

from __future__ import annotations

from text_recognizer.errors import InferenceError


class ImageError(InferenceError):
    """An input that is not an image this package can read safely."""
