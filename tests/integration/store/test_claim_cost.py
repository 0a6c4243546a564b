"""Claiming chunks (in batch order, or in the planner's order) costs the same whether a batch has 200 open chunks
or 20,000: a 1,000,000-line batch is claimed ~4,000 times, and a claim that reads every open chunk makes the whole
batch O(n^2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkClaim, ChunkSpec
from batchgate.store.base import Store
from batchgate.store.postgres import PostgresStore
from batchgate.store.postgres import queries as q
from batchgate.store.sqlite import SQLiteStore


async def started_batch(store: Store, batch_id: str, chunks: int, seq: int = 0) -> None:
    await store.insert_batch(Batch(batch_id, "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                                   created_at=1000 + seq, expires_at=10**9))
    task = await store.claim_batch_task("w0", now=1.0, lease=10)
    assert task is not None and task.batch.id == batch_id
    specs = [ChunkSpec(i, 2 * i + 1, 2 * i + 2, 20 * i, 20 * i + 20, 2) for i in range(chunks)]
    assert await store.start_batch(batch_id, task.generation, specs, "m", now=2)


Claim = Callable[[Store], Awaitable[list[ChunkClaim]]]


async def claim_two(store: Store) -> list[ChunkClaim]:
    return await store.claim_chunks("w1", now=3.0, lease=100, limit=2)


async def claim_two_of(store: Store) -> list[ChunkClaim]:
    return await store.claim_chunks_of("w1", now=3.0, lease=100, wants=[("batch_a", 2)])


def sqlite_steps_per_claim(tmp: Path, chunks: int, claim: Claim = claim_two) -> int:
    """SQLite virtual-machine steps (in units of 100) one claim of 2 chunks takes, 3 claims in."""
    store = SQLiteStore(tmp / f"{chunks}-{claim.__name__}.sqlite3")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    async def go() -> None:
        await store.open()
        try:
            await started_batch(store, "batch_a", chunks)
            for _ in range(3):  # some chunks leased, as while a batch runs
                await claim(store)
            # The store's writer connection runs claims; counting its steps needs its handle.
            store._db.set_progress_handler(count, 100)  # type: ignore[union-attr]
            claims = await claim(store)
            assert [c.spec.index for c in claims] == [6, 7]
        finally:
            await store.close()

    asyncio.run(go())
    return steps


def test_sqlite_claim_does_not_read_every_open_chunk(tmp_path: Path) -> None:
    for claim in (claim_two, claim_two_of):
        few, many = sqlite_steps_per_claim(tmp_path, 200, claim), sqlite_steps_per_claim(tmp_path, 20_000, claim)
        assert many < 2 * few + 10, (claim.__name__, few, many)  # reading every open chunk: ~100x


def actual_rows(plan: Any, table: str) -> int:
    """Rows the plan's scans of `table` produced (EXPLAIN ANALYZE, JSON)."""
    if isinstance(plan, list):
        return sum(actual_rows(p, table) for p in plan)
    own = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1) if plan.get("Relation Name") == table else 0
    return own + sum(actual_rows(p, table) for p in plan.get("Plans", []) + ([plan["Plan"]] if "Plan" in plan else []))


def test_postgres_claim_reads_only_the_chunks_it_takes(pg_url: str) -> None:
    async def go() -> tuple[int, int]:
        store = PostgresStore(pg_url, pool_size=2)
        await store.open()
        try:
            await started_batch(store, "batch_a", 20_000)
            await started_batch(store, "batch_b", 10, seq=1)
            await store.claim_chunks("w1", now=3.0, lease=100, limit=4)
        finally:
            await store.close()
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("ANALYZE")
            tx = conn.transaction()
            await tx.start()
            try:
                found = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + q.CLAIM_CHUNKS, 3.0, "w2", 103.0, 2)
                # the planner's order: 2 chunks of the big batch after 2 of the small one
                ordered = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + q.CLAIM_CHUNKS_OF, 3.0, "w2", 103.0,
                                              ["batch_b", "batch_a"], [2, 2])
            finally:
                await tx.rollback()
        finally:
            await conn.close()
        return actual_rows(json.loads(found), "chunks"), actual_rows(json.loads(ordered), "chunks")

    rows, ordered_rows = asyncio.run(go())
    assert rows < 100, rows  # reading every open chunk: 20,000
    assert ordered_rows < 100, ordered_rows
