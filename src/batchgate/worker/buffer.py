"""Fenced group commit of results: a flush starts as soon as a result arrives, and whatever arrives while it
runs goes into the next one. Under load one transaction carries many results; at a crash at most the
results of one transaction's duration are lost (and sent again), not a timer's worth."""

from __future__ import annotations

import asyncio
from types import TracebackType

from batchgate.domain.work import ChunkClaim, RequestResult
from batchgate.store.base import WorkQueue


class LeaseLost(Exception):
    """Another worker owns this chunk now; our results are refused and we must stop."""


class ResultBuffer:
    def __init__(self, store: WorkQueue, claim: ChunkClaim) -> None:
        self._store = store
        self._claim = claim
        self._items: list[tuple[RequestResult, asyncio.Future[None] | None]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> ResultBuffer:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Finished results are kept even when the chunk is being abandoned: let the flusher drain (shielded, so
        # a cancelled chunk does not cancel a transaction that is queued or running), then flush what is left.
        self._closing = True
        self._wake.set()
        if self._ticker is not None:
            await asyncio.shield(asyncio.gather(self._ticker, return_exceptions=True))
        await asyncio.shield(self.flush())

    def add(self, result: RequestResult) -> None:
        self._items.append((result, None))
        self._wake.set()

    async def record(self, result: RequestResult) -> None:
        """Add `result` and return once it is committed (or raise LeaseLost)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((result, fut))
        self._wake.set()
        await fut

    async def _tick(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._items:
                return
            items, self._items = self._items, []
            c = self._claim
            try:
                recorded = await self._store.record_results(
                    c.batch_id, c.spec.index, c.generation, [r for r, _ in items]
                )
            except BaseException:
                self._items[:0] = items  # not known to be stored: keep them (a repeat is ignored by the store)
                raise
            lost = None if recorded else LeaseLost(f"{c.batch_id} chunk {c.spec.index}")
            for _, fut in items:
                if fut is not None and not fut.done():  # its waiter may have been cancelled meanwhile
                    if lost is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(lost)
            if lost is not None:
                raise lost
