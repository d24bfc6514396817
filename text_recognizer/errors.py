"""The errors a user can act on: every entry point (`main.py`, `text-recognizer`,
`text-recognizer-data`) prints them as one line, `error: <message>`, instead of a traceback.

They live at the bottom of the package so that every layer raises them without importing the
layers above it.
"""

from __future__ import annotations


class TextRecognizerError(Exception):
    """The base: the message names the file or value at fault and, where it can, what to do."""


class ConfigError(TextRecognizerError):
    """A config value cannot work; the message names it."""


class DataError(TextRecognizerError, ValueError):
    """An input (an archive, a data file, a label, a metadata entry) that cannot be used."""


class MissingDataError(TextRecognizerError, FileNotFoundError):
    """A file the data needs is not there: an archive not downloaded, or one incomplete."""


REPORTED: tuple[type[BaseException], ...] = (TextRecognizerError, OSError)
"""What an entry point reports in one line: this package's errors, and the system's own (a
folder not writable, a disk full), whose messages name their file."""


class InferenceError(TextRecognizerError, ValueError):
    """`<source>: <problem>`; `source` is a path, or a description of an in-memory input."""

    def __init__(self, source: object, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class CheckpointError(InferenceError):
    """A checkpoint or exported model that cannot be loaded, or that does not fit together."""


class ImageError(InferenceError):
    """An input that is not an image this package can read safely."""


class NotAnImageError(ImageError):
    """Bytes no image decoder recognises: judged by decoding, never by a name or a header."""


class ImageTooLargeError(ImageError):
    """More pixels than may be decoded safely: refused from the image's header, before its
    pixels are allocated."""


class LanguageModelError(InferenceError):
    """A language model file that is missing or is not one `text-recognizer lm train` writes."""
