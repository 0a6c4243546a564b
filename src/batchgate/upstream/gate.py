"""Admission to an upstream: at most `limiter.capacity` requests in flight, and waiting requests admitted
grouped by prompt prefix (a run of one prefix at a time, groups in order of first arrival), so an
engine's prefix cache keeps hitting. Output order is free in a batch; dispatch order is ours."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from batchgate.upstream.limiter import AdaptiveLimiter


class Permit:
    __slots__ = ("_done", "_gate", "started")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self.started = time.monotonic()
        self._done = False

    def done(self) -> None:
        """An ordinary answer arrived."""
        if not self._done:
            self._done = True
            self._gate.limiter.on_done(time.monotonic() - self.started)
            self._gate._wake()

    def overloaded(self) -> None:
        """The upstream said it is full."""
        if not self._done:
            self._done = True
            self._gate.limiter.on_overload()
            self._gate._wake()

    def abandon(self) -> None:
        if not self._done:
            self._done = True
            self._gate.limiter.on_abandoned()
            self._gate._wake()


class Gate:
    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter
        self._groups: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._current: bytes | None = None
        self.waiting = 0
        self.on_hungry: Callable[[], None] | None = None  # called when the window has room and nobody waits

    @asynccontextmanager
    async def admit(self, key: bytes = b"") -> AsyncIterator[Permit]:
        """Wait for a slot; the caller must mark the permit done/overloaded (else it is abandoned on exit)."""
        await self._acquire(key)
        permit = Permit(self)
        try:
            yield permit
        finally:
            permit.abandon()

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
