"""A discrete-event model of a continuous-batching engine driven through an AdaptiveLimiter, on a virtual clock:
the limiter's rules can be checked over thousands of round trips in milliseconds, with no wall-clock timing.

The engine has `slots` slots; a request's service time is `service(now)` seconds. Beyond the slots, requests
wait in a FIFO queue (`mode="queue"`) or are refused at once with a 429 (`mode="reject"`). The client always
has work waiting (unless `idle` is set: a batch that ran dry, before the next one comes): whenever the window has
room it sends. An answer holds its slot `post` more seconds (the
worker recording it) before the limiter hears of it. `timeout`: requests without an answer by then time out.

Other traffic (an interactive neighbour): `foreign_rate` requests a second arrive at random (Poisson, open loop)
straight at the engine, each taking `foreign_service(now)` seconds (default `service`); they queue with ours in
one FIFO, or ahead of ours with `priority` (an engine that schedules by request priority). Their latencies from
arrival to answer are kept in `foreign_latencies` (since `measure`). `metrics_every`: seconds between the
engine's own figures (requests running and waiting, all traffic) handed to `limiter.on_engine_load`.

`connections(now)`: how many requests our own client can have at the engine (a paced connection pool opening
connections); admitted requests beyond it wait in the client, and the limiter is told (`on_queued`, `on_sent`)
as the gate's permits tell it."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.upstream.limiter import AdaptiveLimiter


@dataclass(frozen=True)
class Load:
    """What an engine's metrics say: requests running and waiting, all traffic (vLLM's num_requests_*)."""

    running: float
    waiting: float
    slots: int | None = None
    kv_usage: float | None = None


@dataclass
class EngineModel:
    limiter: AdaptiveLimiter
    slots: int
    service: Callable[[float], float]
    mode: str = "queue"
    post: float = 0.0
    timeout: float = float("inf")
    foreign_rate: float = 0.0
    foreign_service: Callable[[float], float] | None = None
    priority: bool = False
    metrics_every: float = 0.0
    connections: Callable[[float], float] | None = None
    seed: int = 1
    idle: bool = False
    now: float = 0.0
    free: int = field(init=False)
    queue: deque[int] = field(default_factory=deque, init=False)
    # time-weighted accounting since `measure_from`
    measure_from: float = 0.0
    busy_area: float = 0.0
    queue_area: float = 0.0
    queue_time: dict[int, float] = field(default_factory=dict, init=False)
    windows: list[int] = field(default_factory=list, init=False)
    answered: int = 0
    refused: int = 0
    timed_out: int = 0
    foreign_latencies: list[float] = field(default_factory=list, init=False)
    _events: list[tuple[float, int, str, int]] = field(default_factory=list, init=False)
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _sent_at: dict[int, float] = field(default_factory=dict, init=False)
    _answered_at: dict[int, float] = field(default_factory=dict, init=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _held: deque[int] = field(default_factory=deque, init=False)  # admitted, waiting in our client
    _out: int = 0  # our requests sent and not answered
    _last: float = 0.0

    def __post_init__(self) -> None:
        self.free = self.slots
        self._rng = random.Random(self.seed)
        self._foreign_at: dict[int, float] = {}
        self._foreign_ids = itertools.count(-1, -1)  # foreign requests have negative ids
        if self.foreign_rate > 0:
            self._at(self._rng.expovariate(self.foreign_rate), "arrive", 0)
        if self.metrics_every > 0:
            self._at(self.metrics_every, "metrics", 0)
        if self.connections is not None:
            self._at(0.01, "tick", 0)

    def set_foreign_rate(self, rate: float) -> None:
        """Change the neighbour's arrival rate from now on (0 stops it)."""
        was, self.foreign_rate = self.foreign_rate, rate
        if was <= 0 < rate:
            self._at(self.now + self._rng.expovariate(rate), "arrive", 0)

    def _start(self, rid: int, dequeued: bool = False) -> None:
        """Start `rid` on a free slot, or queue it (behind what waits, unless it is what waited)."""
        if self.free > 0 and (dequeued or not self.queue):
            self.free -= 1
            fs = self.foreign_service if rid < 0 and self.foreign_service else self.service
            self._at(self.now + fs(self.now), "answer", rid)
        elif self.mode == "queue" or rid < 0:
            self.queue.append(rid)
        else:
            self._at(self.now + 0.001, "refused", rid)

    def _next_queued(self) -> int | None:
        if self.priority:
            for i, rid in enumerate(self.queue):
                if rid < 0:
                    del self.queue[i]
                    return rid
        return self.queue.popleft() if self.queue else None

    def _at(self, when: float, kind: str, rid: int) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, rid))

    def _account(self, t: float) -> None:
        start = max(self._last, self.measure_from)
        if t > start:
            dt = t - start
            self.busy_area += (self.slots - self.free) * dt
            q = len(self.queue)
            self.queue_area += q * dt
            self.queue_time[q] = self.queue_time.get(q, 0.0) + dt
        self._last = t

    def _fill(self) -> None:
        lim = self.limiter
        while self._held and self.connections is not None and self._out < self.connections(self.now):
            rid = self._held.popleft()
            lim.on_sent()
            self._send(rid)
        while not self.idle and lim.inflight < lim.capacity:
            lim.on_start()
            rid = next(self._ids)
            if self.connections is not None and (self._held or self._out >= self.connections(self.now)):
                lim.on_queued()
                self._held.append(rid)
            else:
                self._send(rid)

    def _send(self, rid: int) -> None:
        self._out += 1
        self._sent_at[rid] = self.now + 1e-6  # the permit is dated just after it was sent
        if self.timeout < float("inf"):
            self._at(self.now + self.timeout, "timeout", rid)
        self._start(rid)

    def run(self, until: float) -> None:
        self._fill()
        while self._events and self._events[0][0] <= until:
            when, _, kind, rid = heapq.heappop(self._events)
            self._account(when)
            self.now = when
            lim = self.limiter
            if kind == "arrive":
                fid = next(self._foreign_ids)
                self._foreign_at[fid] = self.now
                self._start(fid)
                if self.foreign_rate > 0:
                    self._at(self.now + self._rng.expovariate(self.foreign_rate), "arrive", 0)
            elif kind == "tick":
                self._at(self.now + 0.01, "tick", 0)
            elif kind == "metrics":
                lim.on_engine_load(Load(self.slots - self.free, len(self.queue)), self.now)
                self._at(self.now + self.metrics_every, "metrics", 0)
            elif kind == "answer":
                self.free += 1
                if rid >= 0:
                    self._out -= 1  # timed out or not: the connection is free again
                nxt = self._next_queued()
                if nxt is not None:
                    self._start(nxt, dequeued=True)
                if rid < 0:
                    arrived = self._foreign_at.pop(rid)
                    if arrived >= self.measure_from:
                        self.foreign_latencies.append(self.now - arrived)
                elif rid in self._sent_at:
                    self._answered_at[rid] = self.now
                    self.limiter.on_answer(self.now)
                    self._at(self.now + self.post, "release", rid)
            elif kind == "release":
                sent = self._sent_at.pop(rid)
                answered = self._answered_at.pop(rid)
                self.answered += 1
                lim.on_done(answered - sent, self.now, self.now - sent)
            elif kind == "refused":
                self._out -= 1
                self._sent_at.pop(rid)
                self.refused += 1
                lim.on_overload(self.now)
            elif kind == "timeout":
                if rid not in self._sent_at or rid in self._answered_at:
                    continue
                sent = self._sent_at.pop(rid)  # the engine still serves it; nobody waits for the answer
                self.timed_out += 1
                lim.on_timeout(self.now, self.now - sent)
            if self.now >= self.measure_from:
                self.windows.append(lim.window)
            self._fill()
        self._account(until)
        self.now = until

    def measure(self, seconds: float) -> None:
        """Run `seconds` more, accounting only that stretch."""
        self.measure_from = self.now
        self.foreign_latencies = []
        self.busy_area = self.queue_area = 0.0
        self.queue_time = {}
        self.windows = []
        self.run(self.now + seconds)

    @property
    def utilization(self) -> float:
        span = self.now - self.measure_from
        return self.busy_area / (self.slots * span) if span > 0 else 0.0

    @property
    def queue_mean(self) -> float:
        span = self.now - self.measure_from
        return self.queue_area / span if span > 0 else 0.0

    def queue_quantile(self, q: float) -> int:
        total = sum(self.queue_time.values())
        seen = 0.0
        for length in sorted(self.queue_time):
            seen += self.queue_time[length]
            if seen >= q * total:
                return length
        return 0

    def foreign_quantile(self, q: float) -> float:
        xs = sorted(self.foreign_latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0
