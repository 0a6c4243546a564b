"""When and how long to wait before sending a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass

_RNG = random.Random()

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1): full-jitter exponential backoff,
        never shorter than the upstream's Retry-After."""
        r = rng or _RNG
        cap = min(self.max_seconds, self.base_seconds * (2 ** (attempt - 1)))
        backoff = cap / 2 + r.uniform(0, cap / 2)
        if retry_after is not None and retry_after > 0:
            # The upstream said when; a little jitter keeps many waiters from returning at once.
            return float(min(retry_after, 300.0) * (1 + r.uniform(0, 0.1)))
        return float(backoff)

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
