"""A route's capacity (requests/s) as the scheduler's estimates use it: the route's measured throughput,
smoothed.

The planner reads every batch's `done` count about once a second; the route's throughput over each such interval
is a sample. Three things make a sample a poor forecast of the rest of a batch, and the rule answers each:

- **Start-up.** The interval in which a route's first answers arrive holds a whole latency with nothing done and
  a window that is still opening: it is dropped (the measurement starts at the first sample that shows progress).
- **Noise.** One interval's throughput swings with the machine (a loaded host gives the worker and the engine
  less CPU from one second to the next). Samples are averaged with weights that fall off exponentially with
  their age, with time constant HORIZON_SECONDS: the estimate follows a lasting change within about that long
  and ignores a blip much shorter than it.
- **Lag.** A fixed window of history (the rule before this one: 30 s) holds the rate of a past phase for the
  whole window: after a change of load the estimate was the old phase's rate for up to 30 s. The exponential
  weights forget at a steady pace instead, and before HORIZON_SECONDS of history the average is over what there
  is (each weight is divided by the weights so far), not pulled toward zero.

A route that has done nothing for STALL_SECONDS has no capacity (its upstream is down, say): an estimate from
its last rate would be a promise nobody keeps. The next progress starts a new measurement, start-up dropped.
Pure: the caller passes the time.
"""

from __future__ import annotations

import math

HORIZON_SECONDS = 10.0  # time constant of the average: a sample this old weighs 1/e of a new one
STALL_SECONDS = 30.0  # no progress for this long: no capacity
SAMPLE_SECONDS = 0.5  # a shorter interval (a planning tick brought forward) is merged into the next


class Capacity:
    """One route's throughput, from (time, requests done so far) samples in increasing time."""

    __slots__ = ("_last", "_moved_at", "_sum", "_weight")

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # the previous sample
        self._moved_at: float | None = None  # when the count last grew; None before the first progress
        self._sum = 0.0  # exponentially weighted sum of sample rates
        self._weight = 0.0  # the same sum of weights (1 - e^(-age/horizon) in all after `age` seconds)

    def add(self, t: float, done: float, *, exact: bool = True) -> None:
        """A sample: `done` requests by time `t`. `exact=False`: the count over the interval since the last sample
        is not the route's work (a batch left in_progress in it, and its last requests cannot be told from the
        ones it never ran because it expired or was cancelled); the interval only moves the start of the next."""
        last = self._last
        if last is not None and t - last[0] < SAMPLE_SECONDS and exact:
            return
        self._last = (t, done)
        if last is None:
            return
        t0, done0 = last
        if done > done0:
            started = self._moved_at is not None
            self._moved_at = t
            if not started or not exact:  # the first progress: the interval up to here is the start-up
                return
        elif self._moved_at is None or not exact:
            return
        elif t - self._moved_at >= STALL_SECONDS:
            self._moved_at = None
            self._sum = self._weight = 0.0
            return
        keep = math.exp(-(t - t0) / HORIZON_SECONDS)
        self._sum = keep * self._sum + (1 - keep) * (done - done0) / (t - t0)
        self._weight = keep * self._weight + (1 - keep)

    def rate(self) -> float | None:
        """Requests/s, or None before the first interval after the start-up, or after a stall."""
        if self._weight <= 0 or self._sum <= 0:
            return None
        return self._sum / self._weight
