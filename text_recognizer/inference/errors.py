"""Errors a user's input causes, reported as one line naming the file and the problem."""

from __future__ import annotations

from text_recognizer.errors import InferenceError


class ImageError(InferenceError):
    """An input that is not an image this package can read safely."""


class NotAnImageError(ImageError):
    """Bytes no image decoder recognises: judged by decoding, never by a name or a header."""


class ImageTooLargeError(ImageError):
    """More pixels than may be decoded safely: refused from the image's header, before its
    pixels are allocated."""
