"""What an upstream route looks like right now, as a value: read on the worker's loop (where the route's gate and
limiter change) and shown elsewhere, e.g. on the dashboard's upstreams page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteState:
    name: str
    patterns: tuple[str, ...]  # the model names and glob patterns the route serves
    window: int  # requests the adaptive limiter allows in flight now
    max_window: int
    inflight: int
    waiting: int
    overloads: int  # 429s / 503s with Retry-After seen since start
    min_latency_ms: float | None  # the engine's latency without a queue, as the limiter last measured it
