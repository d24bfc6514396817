"""Errors a run reports in one line instead of a traceback."""


class TrainingError(RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""
