"""The one interface every place a request can be executed implements (HTTP upstream or local engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """What came back for one request: an HTTP status and a JSON body (raw bytes, forwarded as is)."""

    status: int
    body: bytes
    request_id: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After / retry-after-ms when present


class TransportError(Exception):
    """The request got no HTTP answer (connection refused/reset, timeout). Always retryable."""

    def __init__(self, kind: str, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.kind = kind  # "timeout" | "connection"
        self.message = message
        self.refused = refused  # no connection could be made: the request never reached the server


class ModelUnavailable(Exception):
    """A model this executor would serve cannot be loaded (not installed, checksum mismatch)."""


class Sending(Protocol):
    """Told when a request waits inside the executor before it reaches the engine (for a connection of a paced
    pool): that wait is batchgate's own queueing, never the engine's latency or concurrency (upstream/gate.py's
    Permit, which tells the window)."""

    def waiting(self) -> None: ...

    def sent(self) -> None:
        """It left for the engine (after `waiting`)."""
        ...


class Executor(Protocol):
    """Executes one OpenAI-compatible request. Implementations: HTTP upstream, local in-process engine."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float,
                   sending: Sending | None = None) -> UpstreamResponse:
        """POST `body` to `endpoint` (e.g. "/v1/chat/completions"). Raises TransportError on no answer. An executor
        that may hold the request before it reaches the engine tells `sending`."""
        ...

    def check_model(self, model: str) -> None:
        """Raise ModelUnavailable (message names what to install) if `model` can't be served here."""
        ...

    def list_models(self) -> list[str]:
        """Model ids this executor knows it can serve (for GET /v1/models); may be empty for '*' routes."""
        ...

    def endpoints(self, model: str) -> tuple[str, ...]:
        """The batch endpoints ("/v1/...") this executor can answer for `model` (a model check_model accepts)."""
        ...
