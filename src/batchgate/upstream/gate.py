"""Admission to an upstream: at most `limiter.capacity` requests in flight, and waiting requests admitted
grouped by prompt prefix (a run of one prefix at a time, groups in order of first arrival), so an
engine's prefix cache keeps hitting. Output order is free in a batch; dispatch order is ours."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from batchgate.upstream.limiter import AdaptiveLimiter


class Permit:
    """One admitted request. Its slot is held until the `admit` block exits, so a caller can keep it while the
    answer is being recorded: then what a crash can lose is never more than the window."""

    __slots__ = ("_gate", "_outcome", "_rtt", "started")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self.started = time.monotonic()
        self._outcome = "abandoned"
        self._rtt = 0.0

    def done(self) -> None:
        """An ordinary answer arrived (its latency is measured now, not when the slot is released)."""
        self._outcome, self._rtt = "done", time.monotonic() - self.started
        # No longer at the engine, though its slot is held while it is recorded: the engine's place is free now.
        self._gate.limiter.on_answer()
        self._gate._wake()

    def overloaded(self) -> None:
        """The upstream said it is full."""
        self._outcome = "overloaded"

    def timed_out(self) -> None:
        """No answer within the request timeout: congestion (a queue too long for the timeout, or a stuck engine)."""
        self._outcome = "timed_out"

    def release(self) -> None:
        lim = self._gate.limiter
        if self._outcome == "done":
            now = time.monotonic()
            lim.on_done(self._rtt, now, now - self.started)  # held: the answer was recorded meanwhile
        elif self._outcome == "overloaded":
            lim.on_overload()
        elif self._outcome == "timed_out":
            now = time.monotonic()
            lim.on_timeout(now, now - self.started)
        else:
            lim.on_abandoned()
        self._gate._wake()


class _Admission:
    __slots__ = ("_gate", "_key", "_permit")

    def __init__(self, gate: Gate, key: bytes) -> None:
        self._gate = gate
        self._key = key
        self._permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        await self._gate._acquire(self._key)
        self._permit = Permit(self._gate)
        return self._permit

    async def __aexit__(self, *exc: object) -> None:
        if self._permit is not None:
            self._permit.release()


class Gate:
    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter
        self._groups: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._current: bytes | None = None
        self.waiting = 0
        self.on_hungry: Callable[[], None] | None = None  # called when the window has room and nobody waits

    def admit(self, key: bytes = b"") -> _Admission:
        """`async with gate.admit(key) as permit`: wait for a slot, held until the block exits; mark the permit
        done, overloaded or timed out (else: abandoned)."""
        return _Admission(self, key)

    async def _acquire(self, key: bytes) -> None:
        lim = self.limiter
        if not self.waiting and lim.inflight < lim.capacity:
            lim.on_start()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._groups.setdefault(key, deque()).append(fut)
        self.waiting += 1
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # We were granted a slot as we were cancelled: give it back.
                lim.on_abandoned()
                self._wake()
            else:
                self._discard(key, fut)
            raise

    def _discard(self, key: bytes, fut: asyncio.Future[None]) -> None:
        group = self._groups.get(key)
        if group is not None and fut in group:
            group.remove(fut)
            self.waiting -= 1
            if not group:
                del self._groups[key]

    def _wake(self) -> None:
        lim = self.limiter
        while self.waiting and lim.inflight < lim.capacity:
            key = self._current
            if key is None or key not in self._groups:
                key = next(iter(self._groups))  # the group that has waited longest
                self._current = key
            group = self._groups[key]
            fut = group.popleft()
            self.waiting -= 1
            if not group:
                del self._groups[key]
            if fut.done():
                continue
            lim.on_start()
            fut.set_result(None)
        if self.on_hungry is not None and self.waiting == 0 and lim.inflight < lim.capacity:
            self.on_hungry()
