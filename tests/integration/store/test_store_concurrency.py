"""Many workers on one database at once: each store instance below is a separate connection (pool), as separate
worker processes would have. Runs on SQLite (one file, several connections) and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from batchgate.domain.batch import Batch, Usage
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkClaim, ChunkSpec, RequestResult, TaskKind
from batchgate.store.base import Store
from batchgate.store.postgres import PostgresStore
from batchgate.store.sqlite import SQLiteStore

WORKERS = 6
CHUNKS = 60
Stores = Callable[[Callable[[list[Store]], Awaitable[None]]], None]


@pytest.fixture(params=["sqlite", "postgres"])
def with_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    def run(body: Callable[[list[Store]], Awaitable[None]]) -> None:
        stores: list[Store]
        if request.param == "postgres":
            url = request.getfixturevalue("pg_url")
            stores = [PostgresStore(url, pool_size=2) for _ in range(WORKERS)]
        else:
            stores = [SQLiteStore(tmp_path / "db.sqlite3") for _ in range(WORKERS)]

        async def go() -> None:
            for s in stores:
                await s.open()
            try:
                await body(stores)
            finally:
                for s in stores:
                    await s.close()

        asyncio.run(go())

    return run


def result(line: int) -> RequestResult:
    return RequestResult(line, True, b'{"line":%d}' % line, Usage(1, 0, 1, 0, 2))


async def running_batch(s: Store, chunks: int = CHUNKS) -> None:
    await s.insert_batch(Batch("batch_c", "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                               created_at=1, expires_at=10**10))
    task = await s.claim_batch_task("v", now=1.0, lease=10)
    assert task is not None and task.kind is TaskKind.VALIDATE
    specs = [ChunkSpec(i, 2 * i + 1, 2 * i + 2, 20 * i, 20 * i + 20, 2) for i in range(chunks)]
    assert await s.start_batch("batch_c", task.generation, specs, "m", now=1)


def test_concurrent_claims_never_hand_a_chunk_to_two_workers(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0])
        claimed: list[tuple[int, str]] = []

        async def worker(i: int, s: Store) -> None:
            while True:
                got = await s.claim_chunks(f"w{i}", now=2.0, lease=30, limit=3)
                if not got:
                    return
                claimed.extend((c.spec.index, f"w{i}") for c in got)

        await asyncio.gather(*(worker(i, s) for i, s in enumerate(stores)))
        indexes = sorted(idx for idx, _ in claimed)
        assert indexes == list(range(CHUNKS))  # every chunk exactly once
        assert len({w for _, w in claimed}) > 1  # and the work was actually shared

    with_stores(body)


def test_concurrent_ordered_claims_never_hand_a_chunk_to_two_workers(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0])
        await stores[0].insert_batch(Batch("batch_d", "q", "/v1/chat/completions", "file-x", "24h",
                                           BatchStatus.VALIDATING, created_at=2, expires_at=10**10))
        task = await stores[0].claim_batch_task("v", now=1.0, lease=10)
        assert task is not None and task.batch.id == "batch_d"
        specs = [ChunkSpec(i, 2 * i + 1, 2 * i + 2, 20 * i, 20 * i + 20, 2) for i in range(CHUNKS)]
        assert await stores[0].start_batch("batch_d", task.generation, specs, "m", now=1)
        claimed: list[tuple[str, int, str]] = []

        async def worker(i: int, s: Store) -> None:
            # half the workers want batch_d first, the other half batch_c: every claim races for the same rows
            wants = [("batch_c", 2), ("batch_d", 1)] if i % 2 else [("batch_d", 2), ("batch_c", 1)]
            while True:
                got = await s.claim_chunks_of(f"w{i}", now=2.0, lease=30, wants=wants)
                if not got:
                    return
                assert [c.batch_id for c in got] == sorted((c.batch_id for c in got),
                                                           key=[w[0] for w in wants].index)
                claimed.extend((c.batch_id, c.spec.index, f"w{i}") for c in got)

        await asyncio.gather(*(worker(i, s) for i, s in enumerate(stores)))
        for batch_id in ("batch_c", "batch_d"):
            indexes = sorted(idx for b, idx, _ in claimed if b == batch_id)
            assert indexes == list(range(CHUNKS))  # every chunk exactly once
        assert len({w for _, _, w in claimed}) > 1  # and the work was actually shared

    with_stores(body)


def test_planners_writing_estimates_at_once_never_deadlock(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        ids = [f"batch_{i}" for i in range(8)]
        for i, batch_id in enumerate(ids):
            await stores[0].insert_batch(Batch(batch_id, "p", "/v1/chat/completions", "file-x", "24h",
                                               BatchStatus.VALIDATING, created_at=i, expires_at=10**10))
            task = await stores[0].claim_batch_task("v", now=1.0, lease=10)
            assert task is not None
            assert await stores[0].start_batch(batch_id, task.generation, [ChunkSpec(0, 1, 2, 0, 20, 2)], "m", now=1)
        (claim,) = await stores[0].claim_chunks_of("w", now=2.0, lease=30, wants=[(ids[3], 1)])

        async def planner(i: int, s: Store) -> None:
            # each planner names the batches in another order; results are recorded into one of them meanwhile
            order = ids[i % len(ids):] + ids[:i % len(ids)]
            for round_ in range(10):
                await s.set_estimates([(b, 1000 * i + round_) for b in (order if i % 2 else reversed(order))])

        async def recorder() -> None:
            for line in range(1, 3):
                assert await stores[0].record_results(ids[3], 0, claim.generation, [result(line)])

        await asyncio.gather(recorder(), *(planner(i, s) for i, s in enumerate(stores)))
        await stores[1].set_estimates([(b, 42) for b in ids])  # once nobody else holds a row, every one is set
        found = [await stores[2].get_batch(b) for b in ids]
        assert [b.estimated_completion_at if b else None for b in found] == [42] * len(ids)

    with_stores(body)


def test_every_result_counted_once_when_workers_race(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0], chunks=4)
        claims = await stores[0].claim_chunks("w0", now=2.0, lease=30, limit=4)
        # every worker records the same results of every chunk at the same time (retries after a crash)
        await asyncio.gather(*(
            s.record_results("batch_c", c.spec.index, c.generation,
                             [result(c.spec.first_line), result(c.spec.last_line)])
            for s in stores for c in claims
        ))
        b = await stores[0].get_batch("batch_c")
        assert b is not None and b.request_counts.completed == 8 and b.usage.total_tokens == 16
        # the last two chunks completed at once by two workers: the batch still enters finalizing
        for c in claims[:2]:
            assert await stores[0].complete_chunk("batch_c", c.spec.index, c.generation, now=3)
        done = await asyncio.gather(*(
            s.complete_chunk("batch_c", c.spec.index, c.generation, now=4)
            for s, c in zip(stores[:2], claims[2:], strict=True)
        ))
        assert all(done)
        b = await stores[0].get_batch("batch_c")
        assert b is not None and b.status is BatchStatus.FINALIZING

    with_stores(body)


def test_finalization_is_claimed_exactly_once(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0], chunks=2)
        b = await stores[0].request_cancel("batch_c", now=2)
        assert b is not None and b.status is BatchStatus.CANCELLING
        got = await asyncio.gather(*(s.claim_batch_task(f"w{i}", now=3.0, lease=30) for i, s in enumerate(stores)))
        tasks = [t for t in got if t is not None]
        assert len(tasks) == 1 and tasks[0].kind is TaskKind.FINALIZE

    with_stores(body)


def test_stale_worker_cannot_write_after_takeover_under_concurrency(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0], chunks=1)
        (old,) = await stores[0].claim_chunks("old", now=2.0, lease=1, limit=1)
        # the lease ran out; a new worker takes the chunk while the old one keeps writing
        new: list[ChunkClaim] = []

        async def steal() -> None:
            # claims skip a row being written this instant (PostgreSQL: SKIP LOCKED), so try like a worker loop
            while not new:
                new.extend(await stores[1].claim_chunks("new", now=10.0, lease=30, limit=1))
                await asyncio.sleep(0.001)

        async def stale_writes() -> list[Any]:
            return [await stores[2].record_results("batch_c", 0, old.generation, [result(1)]) for _ in range(20)]

        _, accepted = await asyncio.gather(steal(), stale_writes())
        assert len(new) == 1
        # once the takeover committed, no later write of the old claim is accepted
        first_refused = accepted.index(False) if False in accepted else len(accepted)
        assert all(not a for a in accepted[first_refused:])
        assert not await stores[2].record_results("batch_c", 0, old.generation, [result(2)])
        assert await stores[1].record_results("batch_c", 0, new[0].generation, [result(2)])
        assert not await stores[2].complete_chunk("batch_c", 0, old.generation, now=11)

    with_stores(body)
