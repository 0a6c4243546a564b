"""A route's replicas: several executors serving the same models, each with its own adaptive window and health.

The route's `Gate` stays the one admission queue (its order is the scheduling policy); the pool decides where an
admitted request runs. `place` binds a waiter to a replica:

- **Affinity.** Requests that share a prompt prefix key go to the replica that served that key before (a bounded
  map, least recently used out), so each engine's prefix cache keeps hitting as if there were one engine.
- **Saturation.** When that replica's window is full the request waits for it there (`held`, in gate order),
  unless a window's worth already waits for it: then it is saturated and the request goes to the replica with the
  most free room instead. A new key goes to the replica with the most free room, and is remembered there.
- **Health.** A replica that refuses or resets connections, or answers 502/503/504 without Retry-After, `DOWN_AFTER`
  times in a row is taken out (`Health`); requests held for it go back to the others, and a probe task asks it
  `GET {base}/models` with backoff until it answers, then puts it back. With every replica down the pool has no
  room: the gate stops admitting, and nothing spends an attempt until one answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from batchgate.upstream.engine_load import EngineLoad
from batchgate.upstream.executor import Executor
from batchgate.upstream.limiter import AdaptiveLimiter

log = logging.getLogger("batchgate.upstream")

DOWN_AFTER = 3  # failures in a row that take a replica out
PROBE_FIRST = 0.5  # seconds before the first probe of a replica taken out; doubles up to PROBE_MAX
PROBE_MAX = 5.0
AFFINITY_KEYS = 100_000  # prefix keys remembered per route (about 5 MB)

Probe = Callable[[], Awaitable[bool]]  # True when the replica answered


class Replica:
    """One executor of a route: its window, its health, and the requests held for it (affinity)."""

    def __init__(self, name: str, executor: Executor | None, limiter: AdaptiveLimiter) -> None:
        self.name = name
        self.executor = executor
        self.limiter = limiter
        self.up = True
        self.failures = 0  # health failures in a row
        self.down_since = 0.0
        self.last_error = ""
        self.last_failed: object = None  # the request of the last failure: one request failing again is no proof
        self.held: deque[tuple[asyncio.Future[Replica | None], bytes]] = deque()
        self.engine_load: EngineLoad | None = None  # the engine's own last reading (engine_poll.py), if polled

    def room(self) -> int:
        lim = self.limiter
        return lim.capacity - lim.inflight if self.up else 0


class Pool:
    """The replicas of one route. `wake` is the gate's: called when room appears that the gate may fill."""

    def __init__(self, route: str, replicas: list[Replica], probe_first: float = PROBE_FIRST,
                 probe_max: float = PROBE_MAX, affinity: bool = True) -> None:
        self.route = route
        self.affinity = affinity
        self.replicas = replicas
        self.wake: Callable[[], None] = lambda: None
        self.on_change: Callable[[], None] | None = None  # told when the route goes down or comes back
        self._affinity: OrderedDict[bytes, Replica] = OrderedDict()
        self.probe_first = probe_first
        self.probe_max = probe_max
        self._probes: dict[Replica, asyncio.Task[None]] = {}
        self.down_since: float | None = None  # when the last replica went down, while all are down
        self.affine = self.spilled = 0  # placements on the key's replica, and away from it (saturated)

    # -- capacity, as the gate reads it

    @property
    def capacity(self) -> int:
        return sum(r.limiter.capacity for r in self.replicas if r.up)

    @property
    def inflight(self) -> int:
        return sum(r.limiter.inflight for r in self.replicas)

    @property
    def max_limit(self) -> int:
        return sum(r.limiter.max_limit for r in self.replicas)

    @property
    def overloads(self) -> int:
        return sum(r.limiter.overloads for r in self.replicas)

    @property
    def held(self) -> int:
        return sum(len(r.held) for r in self.replicas)

    @property
    def base_rtt(self) -> float:
        """The lowest no-queue latency its replicas' limiters measured, seconds (0: none known yet)."""
        rtts = [r.limiter.base_rtt for r in self.replicas if r.limiter.base_rtt > 0]
        return min(rtts) if rtts else 0.0

    def has_room(self) -> bool:
        return any(r.room() > len(r.held) for r in self.replicas)

    @property
    def is_down(self) -> bool:
        return not any(r.up for r in self.replicas)

    # -- placement

    def place(self, fut: asyncio.Future[Replica | None], key: bytes) -> bool:
        """Bind an admitted waiter: start it on a replica (True) or hold it for its key's busy replica (False).
        Needs has_room()."""
        key = key if self.affinity and len(self.replicas) > 1 else b""
        target = self._affinity.get(key) if key else None
        if target is not None and target.up:
            self._affinity.move_to_end(key)
            if target.room() > len(target.held):
                self.affine += 1
                self._start(target, fut)
                return True
            if len(target.held) < max(1, target.limiter.capacity):
                self.affine += 1
                target.held.append((fut, key))
                return False
            self.spilled += 1  # saturated: a window's worth waits for it already
        best = max(self.replicas, key=lambda r: r.room() - len(r.held))
        if key and (target is None or not target.up):
            self._affinity[key] = best
            if len(self._affinity) > AFFINITY_KEYS:
                self._affinity.popitem(last=False)
        self._start(best, fut)
        return True

    def _start(self, replica: Replica, fut: asyncio.Future[Replica | None]) -> None:
        replica.limiter.on_start()
        fut.set_result(replica)

    def released(self, replica: Replica) -> None:
        """A slot of `replica` was freed: its held waiters first, then the gate."""
        while replica.held and replica.up and replica.room() > 0:
            fut, _ = replica.held.popleft()
            if not fut.done():  # else cancelled while held
                self._start(replica, fut)
        self.wake()

    # -- health

    def succeeded(self, replica: Replica) -> None:
        """`replica` answered (any HTTP answer but a failure below)."""
        replica.failures = 0
        replica.last_failed = None

    def failed(self, replica: Replica, reason: str, who: object = None, refused: bool = False) -> bool:
        """`replica` refused or dropped a connection or answered 502/503/504 without Retry-After, for request `who`.
        True when it is down now (taken out by this failure or before): the request that saw it spends no attempt.
        A reset or a 502 can be one request's doing, so the same request failing twice in a row counts once (a
        single poison request never takes a replica out); a refused connection always counts."""
        if not replica.up:
            return True
        if not refused and who is not None and who == replica.last_failed:
            return False
        replica.last_failed = who
        replica.failures += 1
        replica.last_error = reason
        if replica.failures < DOWN_AFTER:
            return False
        self._take_out(replica)
        return True

    def _take_out(self, replica: Replica) -> None:
        replica.up = False
        replica.down_since = time.monotonic()
        up = sum(r.up for r in self.replicas)
        if up:
            log.warning("upstream %s: replica %s is down (%s); %d of %d replicas left, probing it", self.route,
                        replica.name, replica.last_error, up, len(self.replicas))
        else:
            self.down_since = replica.down_since
            log.warning("upstream %s: every replica is down (%s); dispatch paused, requests wait without spending "
                        "attempts until one answers", self.route, replica.last_error)
            if self.on_change is not None:
                self.on_change()
        # What waited for it goes back through placement on the others (or back to the gate: None).
        held, replica.held = replica.held, deque()
        for fut, _ in held:
            if not fut.done():
                fut.set_result(None)
        if replica not in self._probes:
            self._probes[replica] = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: Replica) -> None:
        delay = self.probe_first
        try:
            while True:
                await asyncio.sleep(delay)
                if await probe(replica.executor):
                    break
                delay = min(self.probe_max, delay * 2)
        finally:
            self._probes.pop(replica, None)
        self._put_back(replica)

    def _put_back(self, replica: Replica) -> None:
        was_down = self.is_down
        replica.up = True
        replica.failures = 0
        replica.last_failed = None
        gone = time.monotonic() - replica.down_since
        if was_down:
            self.down_since = None
            log.warning("upstream %s: replica %s answers again after %.1f s; dispatch resumed", self.route,
                        replica.name, gone)
            if self.on_change is not None:
                self.on_change()
        else:
            log.warning("upstream %s: replica %s is back after %.1f s", self.route, replica.name, gone)
        self.wake()

    async def close(self) -> None:
        for task in list(self._probes.values()):
            task.cancel()
        for task in list(self._probes.values()):
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._probes.clear()


async def probe(executor: Executor | None) -> bool:
    """Whether `executor` answers: its own `probe` if it has one (the HTTP upstream: GET {base}/models; any HTTP
    answer counts), else True (an in-process engine is never away)."""
    check = getattr(executor, "probe", None)
    if check is None:
        return True
    return bool(await check())
