"""What an upstream route looks like right now, as a value: read on the worker's loop (where the route's gate and
limiter change) and shown elsewhere, e.g. on the dashboard's upstreams page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica of a route: its own window and health."""

    name: str  # its base URL (or "local")
    up: bool
    window: int
    inflight: int
    held: int  # requests waiting for it because it served their prompt prefix before
    down_for_s: float | None  # seconds since it was taken out, while it is down
    last_error: str  # why it was last counted as failing ("" if never)
    engine_running: float | None = None  # the engine's own count of requests running, where its metrics are read
    engine_waiting: float | None = None  # ... and of requests queued inside it


@dataclass(frozen=True, slots=True)
class RouteState:
    name: str
    patterns: tuple[str, ...]  # the model names and glob patterns the route serves
    window: int  # requests the adaptive limiters of its live replicas allow in flight now
    max_window: int
    inflight: int
    waiting: int
    overloads: int  # 429s / 503s with Retry-After seen since start
    min_latency_ms: float | None  # the engine's latency without a queue, as the limiters last measured it (lowest)
    replicas: tuple[ReplicaState, ...] = ()
    down_for_s: float | None = None  # seconds since every replica went down, while they are: dispatch is paused

    @property
    def down(self) -> bool:
        return self.down_for_s is not None
