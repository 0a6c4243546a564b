"""The batcher that gathers concurrent embedding inputs into shared model calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from batchgate.engine.batcher import Batcher

T = TypeVar("T")


class SlowDouble:
    """A blocking 'model' that records each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.release.wait(5)
        self.batches.append(items)
        return [2 * i for i in items]


async def with_batcher(model: SlowDouble, max_batch: int, work: Callable[[Batcher[int, int]], Awaitable[T]]) -> T:
    with ThreadPoolExecutor(1) as pool:
        batcher: Batcher[int, int] = Batcher(model, pool, max_batch)
        batcher.start()
        try:
            return await work(batcher)
        finally:
            model.release.set()
            await batcher.close()


def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    model = SlowDouble()

    async def work(batcher: Batcher[int, int]) -> list[list[int]]:
        first = asyncio.create_task(batcher.run([0]))
        await asyncio.sleep(0.05)  # the first batch [0] is now computing and blocks
        rest = [asyncio.create_task(batcher.run([i, i + 100])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        model.release.set()
        return [await first, *[await t for t in rest]]

    results = asyncio.run(with_batcher(model, 4, work))
    assert results == [[0], [2, 202], [4, 204], [6, 206], [8, 208], [10, 210]]
    assert [len(b) for b in model.batches] == [1, 4, 4, 2]


def test_a_failing_model_call_raises_in_each_caller() -> None:
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("model failed")

    async def work() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher: Batcher[int, int] = Batcher(broken, pool, 8)
            batcher.start()
            try:
                with pytest.raises(RuntimeError, match="model failed"):
                    await batcher.run([1, 2])
            finally:
                await batcher.close()

    asyncio.run(work())


def test_a_caller_that_gives_up_leaves_the_queue() -> None:
    model = SlowDouble()

    async def work(batcher: Batcher[int, int]) -> list[int]:
        blocker = asyncio.create_task(batcher.run([1]))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.run([2, 3]), 0.05)
        model.release.set()
        await blocker
        return await batcher.run([4])

    assert asyncio.run(with_batcher(model, 8, work)) == [8]
    assert model.batches == [[1], [4]]
