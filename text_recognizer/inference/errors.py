"""Errors a user's input causes, reported as one line naming the file and the problem."""

from __future__ import annotations


class InferenceError(ValueError):
    """`<source>: <problem>`; `source` is a path, or a description of an in-memory input."""

    def __init__(self, source: object, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class ImageError(InferenceError):
    """An input that is not an image this package can read safely."""


class CheckpointError(InferenceError):
    """A checkpoint or exported model that cannot be loaded, or that does not fit together."""
