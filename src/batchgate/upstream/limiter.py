"""Adaptive concurrency per upstream: how many requests may be in flight right now.

Slow start multiplies the window by five each round trip while the upstream keeps up; after the first sign of
overload it grows by ~1% per round trip. Signs of overload: a 429 (or a 503 with Retry-After), or latency
rising well above the best recently seen (requests queueing inside the engine). Each 429 steps the window
down by one, and once per round trip it drops to what was in flight when the refusal came; rising latency
cuts it to three quarters of what was in flight. No tuning per upstream: the window finds the engine's slot
count by itself, and backs off when the engine slows down.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimiter:
    max_limit: int = 4096
    initial: int = 16
    min_limit: int = 1
    latency_tolerance: float = 2.0  # latency above this multiple of the recent minimum means queueing
    backoff: float = 0.9
    limit: float = field(init=False)
    inflight: int = field(default=0, init=False)
    slow_start: bool = field(default=True, init=False)
    _rtts: deque[tuple[float, float]] = field(default_factory=deque, init=False)
    _last_cut: float = field(default=0.0, init=False)
    _srtt: float = field(default=0.0, init=False)
    overloads: int = field(default=0, init=False)
    _latency_cut_at: float = field(default=0.0, init=False)
    _srtt_at_cut: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.limit = float(min(self.initial, self.max_limit))

    @property
    def capacity(self) -> int:
        return max(self.min_limit, int(self.limit))

    def min_rtt(self, now: float) -> float:
        # The lowest latency of the last 30 s: old minimums expire so a slower engine becomes the new normal.
        # `_rtts` is a monotonic queue (values rise from left to right), so the minimum is its first entry.
        while self._rtts and self._rtts[0][0] < now - 30.0:
            self._rtts.popleft()
        return self._rtts[0][1] if self._rtts else 0.0

    def on_start(self) -> None:
        self.inflight += 1

    def on_done(self, rtt: float, now: float | None = None) -> None:
        """A request got an ordinary answer (success or a non-overload error) after `rtt` seconds."""
        now = time.monotonic() if now is None else now
        in_use = self.inflight
        self.inflight -= 1
        # Smoothed latency, so one long generation among short ones is not mistaken for queueing.
        self._srtt = rtt if self._srtt == 0 else 0.95 * self._srtt + 0.05 * rtt
        while self._rtts and self._rtts[-1][1] >= self._srtt:
            self._rtts.pop()  # an older, higher sample can never be the minimum again
        self._rtts.append((now, self._srtt))
        floor = self.min_rtt(now)
        if floor > 0 and self._srtt > self.latency_tolerance * floor and self._srtt > floor + 0.005:
            if self._latency_cut_at and now - self._latency_cut_at > 3 * self._srtt \
                    and self._srtt > 0.9 * self._srtt_at_cut:
                # We cut and latency stayed up: the engine itself got slower (longer outputs, a busier GPU),
                # it is not our queue. Take this latency as the new normal instead of starving the engine.
                self._rtts.clear()
                self._rtts.append((now, self._srtt))
                self._latency_cut_at = 0.0
                return
            if self._cut(now, in_use / self.latency_tolerance * 1.5):
                self._latency_cut_at, self._srtt_at_cut = now, self._srtt
            return
        if in_use + 1 >= self.limit * 0.8:  # only grow a window that is actually being used
            if self.slow_start:  # x5 per round trip: from 512, a 2,560-slot engine is found in one
                self.limit = min(self.max_limit, self.limit + 4)
            else:
                self.limit = min(self.max_limit, self.limit + max(1.0, self.limit * 0.01) / self.limit)

    def on_overload(self, now: float | None = None) -> None:
        """The upstream refused a request because it is full (429, or 503 with Retry-After)."""
        now = time.monotonic() if now is None else now
        in_use = self.inflight
        self.inflight -= 1
        self.overloads += 1
        # Each refusal says "one too many": step down by one, so refusals stop as soon as the window matches the
        # engine's slots. Once per round trip also drop to what was in flight when it came.
        self.limit = max(float(self.min_limit), self.limit - 1)
        self._cut(now, in_use, factor=1.0)

    def on_abandoned(self) -> None:
        """No answer (timeout, dropped connection, cancelled): free the slot, learn nothing."""
        self.inflight -= 1

    def _cut(self, now: float, in_use: float, factor: float | None = None) -> bool:
        self.slow_start = False
        if now - self._last_cut < max(self._srtt, 0.05):
            return False  # one cut per round trip: the other signals of this round say the same thing
        self._last_cut = now
        shrunk = self.limit * (self.backoff if factor is None else factor)
        self.limit = max(float(self.min_limit), min(shrunk, in_use))
        return True
