"""Draining a chunk when its batch is paused: what was already sent to an upstream finishes and is recorded;
nothing more is sent.

`start()` cancels every request task of the chunk that is not inside its upstream executor's `send` at that
moment: those waiting at the gate (counted out there, never sent) and those waiting to try again after a failed
attempt (nothing recorded). From then on every `send` of the chunk raises CancelledError instead of sending, so a
request whose answer comes back not final (a 5xx, an overload) stops at its next attempt, unrecorded. A request
inside `send` gets its answer; a final answer is recorded (the result buffer takes it before anything can cancel
the task). The chunk task then releases its lease instead of completing the chunk, and the lines without a result
run on resume.

The guard wraps the executor of the chunk's routes (a shallow copy of the Route sharing its gate), so neither the
gate nor the request executor needs to know about pauses."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from batchgate.upstream.executor import Executor, UpstreamResponse
from batchgate.upstream.router import Route


class Drain:
    """One per running chunk. The heartbeat calls `start()` when the chunk's batch is paused."""

    def __init__(self) -> None:
        self.draining = False
        self.stopped = 0  # request tasks cancelled before they were sent, or before they were sent again
        self._tasks: list[asyncio.Task[Any]] = []  # the chunk's request tasks (its TaskGroup holds them anyway)
        self._sending: set[asyncio.Task[Any]] = set()
        self._routes: dict[int, Route] = {}

    def add(self, task: asyncio.Task[Any]) -> None:
        """A request task of the chunk (cancelled at once when the chunk is already draining)."""
        if self.draining:
            self.stopped += 1
            task.cancel()
            return
        self._tasks.append(task)

    def start(self) -> None:
        """Stop sending: cancel the request tasks not inside a send; those inside finish their attempt."""
        if self.draining:
            return
        self.draining = True
        for t in self._tasks:
            if t not in self._sending and not t.done():
                self.stopped += 1
                t.cancel()

    def route(self, route: Route) -> Route:
        """`route`, with its executor guarded by this drain (same gate, same everything else)."""
        guarded = self._routes.get(id(route))
        if guarded is None:
            guarded = copy.copy(route)  # shares the gate: a copy.copy runs no __post_init__
            guarded.executor = _Guarded(route.executor, self)
            self._routes[id(route)] = guarded
        return guarded

    async def send(self, inner: Executor, endpoint: str, body: dict[str, Any], timeout: float) -> UpstreamResponse:
        """One attempt through `inner`, unless the chunk is draining (then CancelledError: nothing is sent)."""
        if self.draining:
            self.stopped += 1
            raise asyncio.CancelledError
        task = asyncio.current_task()
        if task is not None:
            self._sending.add(task)
        try:
            return await inner.send(endpoint, body, timeout)
        finally:
            if task is not None:
                self._sending.discard(task)


class _Guarded:
    """An Executor that asks its Drain before every send (the rest is the wrapped executor's)."""

    def __init__(self, inner: Executor, drain: Drain) -> None:
        self._inner = inner
        self._drain = drain
        self.name = inner.name

    async def start(self) -> None:
        await self._inner.start()

    async def close(self) -> None:
        await self._inner.close()

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float) -> UpstreamResponse:
        return await self._drain.send(self._inner, endpoint, body, timeout)

    def check_model(self, model: str) -> None:
        self._inner.check_model(model)

    def list_models(self) -> list[str]:
        return self._inner.list_models()

    def endpoints(self, model: str) -> tuple[str, ...]:
        return self._inner.endpoints(model)
