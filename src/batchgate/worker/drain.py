"""Draining a chunk when its batch is paused: what was already admitted to an upstream finishes and is recorded;
nothing more is sent.

A request is *admitted* while it is inside its gate's `admit` block: it holds an upstream slot, sends, and records
a final answer before the block ends. `start()` cancels every request task of the chunk that is not admitted at
that moment: those waiting at the gate (counted out there, never sent) and those waiting to try again after a
failed attempt (nothing recorded). From then on every admission of the chunk is refused with CancelledError (a slot
granted meanwhile is handed back unused), so a request whose answer comes back not final (a 5xx, an overload)
stops at its next attempt, unrecorded. The chunk task then releases its lease instead of completing the chunk, and
the lines without a result run on resume.

The guard wraps the gate of the chunk's routes (a shallow copy of the Route whose `gate` admits through the real
gate), so neither the gate nor the request executor needs to know about pauses, and every replica or executor the
real gate's permit leads to is covered."""

from __future__ import annotations

import asyncio
import copy
from types import TracebackType
from typing import Any, cast

from batchgate.upstream.gate import Gate
from batchgate.upstream.router import Route


class Drain:
    """One per running chunk. The heartbeat calls `start()` when the chunk's batch is paused."""

    def __init__(self) -> None:
        self.draining = False
        self.stopped = 0  # request tasks cancelled before they were sent, or before they were sent again
        self._tasks: list[asyncio.Task[Any]] = []  # the chunk's request tasks (its TaskGroup holds them anyway)
        self._admitted: set[asyncio.Task[Any]] = set()
        self._routes: dict[int, Route] = {}

    def add(self, task: asyncio.Task[Any]) -> None:
        """A request task of the chunk (cancelled at once when the chunk is already draining)."""
        if self.draining:
            self.stopped += 1
            task.cancel()
            return
        self._tasks.append(task)

    def start(self) -> None:
        """Stop sending: cancel the request tasks not admitted; the admitted ones finish their attempt."""
        if self.draining:
            return
        self.draining = True
        for t in self._tasks:
            if t not in self._admitted and not t.done():
                self.stopped += 1
                t.cancel()

    def close(self) -> None:
        """The chunk ended: let go of its tasks and guarded routes. Each guarded gate points back here, so without
        this the drain, and with it every request task of the chunk, is freed only by the cyclic collector (a
        young collection then walked ~50,000 of them: 55-67 ms pauses of both threads, the API's p99)."""
        self._tasks.clear()
        self._admitted.clear()
        self._routes.clear()

    def route(self, route: Route) -> Route:
        """`route`, with its gate's admissions guarded by this drain (the same gate, the same everything else)."""
        guarded = self._routes.get(id(route))
        if guarded is None:
            guarded = copy.copy(route)  # a copy.copy runs no __post_init__: nothing is rebuilt
            # Only `admit` differs; every other attribute of the gate is the real one's (_GuardedGate.__getattr__).
            guarded.gate = cast(Gate, _GuardedGate(route.gate, self))
            self._routes[id(route)] = guarded
        return guarded


class _GuardedGate:
    """A route's gate as one chunk sees it: admissions go through the real gate unless the chunk drains."""

    def __init__(self, inner: Gate, drain: Drain) -> None:
        self._inner = inner
        self._drain = drain

    def admit(self, key: bytes = b"", flow: str = "") -> _GuardedAdmission:
        return _GuardedAdmission(self._inner.admit(key, flow), self._drain)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _GuardedAdmission:
    """`async with`: the real admission, refused (CancelledError) once the chunk drains; while the block runs the
    task counts as admitted, so that `Drain.start` lets it finish."""

    def __init__(self, inner: Any, drain: Drain) -> None:
        self._inner = inner
        self._drain = drain
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Any:
        drain = self._drain
        if drain.draining:
            drain.stopped += 1
            raise asyncio.CancelledError
        permit = await self._inner.__aenter__()
        if drain.draining:  # the slot came after the pause: hand it back unused
            await self._inner.__aexit__(None, None, None)
            drain.stopped += 1
            raise asyncio.CancelledError
        self._task = asyncio.current_task()
        if self._task is not None:
            drain._admitted.add(self._task)
        return permit

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> Any:
        if self._task is not None:
            self._drain._admitted.discard(self._task)
        return await self._inner.__aexit__(et, e, tb)
