"""A chunk's Drain lets go of the chunk when it ends: its guarded gates point back at it, so before `close` the
drain and every request task of the chunk could be freed only by the cyclic collector (at 10 batches of fast
requests, ~37,000 such objects every 5 s, and young collections of 55-67 ms that stopped the API's thread too)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from batchgate.engine.local import LocalEngine
from batchgate.upstream.router import Route
from batchgate.worker.drain import Drain


async def _chunk(drain: Drain, route: Route) -> weakref.ref[asyncio.Task[None]]:
    guarded = drain.route(route)

    async def one() -> None:
        async with guarded.gate.admit():
            pass

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one()) for _ in range(3)]
        for t in tasks:
            drain.add(t)
    return weakref.ref(tasks[0])


def test_a_closed_drain_and_its_tasks_are_freed_without_the_collector() -> None:
    route = Route("r", ("m",), LocalEngine(), max_concurrency=4)
    gc.collect()
    gc.disable()
    try:
        drain = Drain()
        task = asyncio.run(_chunk(drain, route))
        ref = weakref.ref(drain)
        drain.close()
        del drain
        assert ref() is None and task() is None
    finally:
        gc.enable()
