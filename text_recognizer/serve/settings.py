"""What a server allows and how it batches; every value has a command-line flag."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from text_recognizer.errors import ConfigError

TOKEN_ENV = "TEXT_RECOGNIZER_TOKEN"


@dataclass(frozen=True)
class Settings:
    """Limits protect the process from its input: a body's bytes are counted as they arrive
    and an image's pixels are read from its header, before either is held whole in memory."""

    max_batch: int = 32
    """Requests decoded as one batch at most; 1 turns batching off."""
    max_wait_ms: float = 5.0
    """How long the first request of a batch waits for others to join it."""
    max_queue: int = 256
    """Requests waiting for the decoder before new ones are refused (503)."""
    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = 25_000_000
    timeout_s: float = 30.0
    """From the request's arrival to its answer; a request that runs out is answered 503."""
    token: str | None = None
    """When set, `/v1/*` needs `Authorization: Bearer <token>`."""
    cors_origins: tuple[str, ...] = ()
    """Origins a browser may call the API from; none (CORS off) unless configured."""

    def __post_init__(self) -> None:
        for field in ("max_batch", "max_queue", "max_upload_bytes", "max_pixels", "timeout_s"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be positive, got {getattr(self, field)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be zero or positive, got {self.max_wait_ms}")
        if self.token == "":
            raise ConfigError("the bearer token is empty")

    def limits(self) -> dict[str, int | float]:
        """What a client may send and how requests are batched (in `/v1/model`)."""
        return {
            k: v for k, v in dataclasses.asdict(self).items() if k not in ("token", "cors_origins")
        }
