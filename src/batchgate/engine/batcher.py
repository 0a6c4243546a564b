"""Coalescing the inputs of concurrent embedding requests into full model batches.

A batch job sends one input per request; run alone, each would be a batch of one (about 330
sentences/s for MiniLM here against about 580/s in batches of 32). While one batch computes in a
thread, the next requests queue; the next batch takes up to `max_batch` of them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs `compute(items) -> results` (blocking, in `pool`) on batches gathered across callers.

    One task drains the queue; `start` and `close` bound its life.
    """

    def __init__(self, compute: Callable[[list[T]], Sequence[R]], pool: Executor, max_batch: int) -> None:
        self._compute = compute
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="embedding-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            future.cancel()

    async def run(self, items: Sequence[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = []
        for item in items:
            future: asyncio.Future[R] = loop.create_future()
            futures.append(future)
            self._queue.put_nowait((item, future))
        try:
            return list(await asyncio.gather(*futures))
        finally:
            # A caller that gave up (timeout) takes its queued inputs out of the next batches.
            for future in futures:
                future.cancel()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self._pool, self._compute, [i for i, _ in live])
            except asyncio.CancelledError:
                for _, future in live:
                    future.cancel()
                raise
            except Exception as exc:  # handed to every waiting caller, who re-raises it
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
