"""Buffered, fenced recording of results: one transaction per many results instead of one per request."""

from __future__ import annotations

import asyncio
from types import TracebackType

from batchgate.domain.work import ChunkClaim, RequestResult
from batchgate.store.base import Store


class LeaseLost(Exception):
    """Another worker owns this chunk now; our results are refused and we must stop."""


class ResultBuffer:
    def __init__(self, store: Store, claim: ChunkClaim, max_items: int = 128, max_delay: float = 0.1) -> None:
        self._store = store
        self._claim = claim
        self._max_items = max_items
        self._max_delay = max_delay
        self._items: list[RequestResult] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResultBuffer:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await self.flush()  # finished results are kept even when the chunk is being abandoned

    def add(self, result: RequestResult) -> None:
        self._items.append(result)
        if len(self._items) >= self._max_items:
            self._wake.set()

    async def _tick(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._max_delay)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._items:
                return
            items, self._items = self._items, []
            c = self._claim
            if not await self._store.record_results(c.batch_id, c.spec.index, c.generation, items):
                raise LeaseLost(f"{c.batch_id} chunk {c.spec.index}")
