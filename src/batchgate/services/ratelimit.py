"""Per-key rate limits: a token bucket per (key, action), in this process's memory.

With several API processes each enforces the limit on its own share of the traffic; put the load balancer's
stickiness by key in front, or divide the limits, when that matters."""

from __future__ import annotations

import time
from dataclasses import dataclass

from batchgate.errors import RateLimited


@dataclass(frozen=True, slots=True)
class Rate:
    count: int  # requests allowed ...
    per_seconds: float  # ... per this many seconds (bursts up to `count`)


class RateLimiter:
    def __init__(self, rates: dict[str, Rate]) -> None:
        self._rates = rates
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, last refill)

    def hit(self, key: str, action: str, now: float | None = None) -> None:
        """Spend one request of `action` for `key`, or raise RateLimited saying when to come back."""
        rate = self._rates.get(action)
        if rate is None or rate.count <= 0:
            return
        now = time.monotonic() if now is None else now
        per_second = rate.count / rate.per_seconds
        tokens, last = self._buckets.get((key, action), (float(rate.count), now))
        tokens = min(float(rate.count), tokens + (now - last) * per_second)
        if tokens < 1.0:
            self._buckets[(key, action)] = (tokens, now)
            wait = (1.0 - tokens) / per_second
            raise RateLimited(
                f"Rate limit reached for {action}: {rate.count} per {rate.per_seconds:g} s. "
                f"Please try again in {wait:.1f} s.",
                wait,
            )
        self._buckets[(key, action)] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # idle keys refill to full: forgetting them changes nothing
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
