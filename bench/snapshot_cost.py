"""What the planner's store calls cost: `schedule_snapshot` (every second, per worker) and `claim_chunks_of`, with
B running batches of C chunks each, a quarter of every batch's chunks done and a quarter leased, on SQLite and
on PostgreSQL, side by side in one run; and the same at 10x the chunks per batch, to show how the snapshot grows.

Run: .venv/bin/python bench/snapshot_cost.py [--batches 20] [--chunks 200] [--rounds 200]
     [--postgres postgresql://postgres@127.0.0.1:5432/postgres]   (a scratch database is created and dropped)
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

import asyncpg

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec
from batchgate.store.base import Store
from batchgate.store.postgres import PostgresStore
from batchgate.store.sqlite import SQLiteStore


async def fill(store: Store, batches: int, chunks: int) -> list[str]:
    ids = []
    for b in range(batches):
        batch_id = f"batch_{b}"
        await store.insert_batch(Batch(batch_id, f"p{b % 4}", "/v1/chat/completions", "file-x", "24h",
                                       BatchStatus.VALIDATING, created_at=1000 + b, expires_at=10**9))
        task = await store.claim_batch_task("v", now=1.0, lease=10)
        assert task is not None
        specs = [ChunkSpec(i, 256 * i + 1, 256 * i + 256, 0, 1, 256) for i in range(chunks)]
        assert await store.start_batch(batch_id, task.generation, specs, "m", now=2)
        done = await store.claim_chunks_of("w0", now=3.0, lease=1e9, wants=[(batch_id, chunks // 4)])
        for c in done:
            assert await store.complete_chunk(batch_id, c.spec.index, c.generation, now=3)
        await store.claim_chunks_of("w1", now=3.0, lease=1e9, wants=[(batch_id, chunks // 4)])
        ids.append(batch_id)
    return ids


async def timed(store: Store, ids: list[str], rounds: int) -> tuple[float, float]:
    """Median milliseconds of one snapshot and of one claim of 4 chunks from each of 4 batches."""
    snaps, claims = [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        loads = await store.schedule_snapshot(now=4.0 + i)
        snaps.append(time.perf_counter() - t0)
        assert len(loads) == len(ids)
        wants = [(ids[(i + k) % len(ids)], 4) for k in range(4)]
        t0 = time.perf_counter()
        got = await store.claim_chunks_of("w2", now=4.0 + i, lease=0.5, wants=wants)  # gone by the next round
        claims.append(time.perf_counter() - t0)
        assert len(got) == 16
    return 1000 * statistics.median(snaps), 1000 * statistics.median(claims)


async def measure(kind: str, admin: str | None, batches: int, chunks: int, rounds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench_snapshot_{secrets.token_hex(4)}"
        store: Store
        if kind == "postgres":
            assert admin is not None
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            store = PostgresStore(urllib.parse.urlsplit(admin)._replace(path="/" + name).geturl(), pool_size=2)
        else:
            store = SQLiteStore(Path(tmp) / "db.sqlite3")
        await store.open()
        try:
            ids = await fill(store, batches, chunks)
            if isinstance(store, PostgresStore):
                await store.pool.execute("ANALYZE")
            return await timed(store, ids, rounds)
        finally:
            await store.close()
            if kind == "postgres":
                conn = await asyncpg.connect(admin)
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--postgres", help="an admin URL of a PostgreSQL server (omit: SQLite only)")
    args = ap.parse_args()
    kinds = ["sqlite"] + (["postgres"] if args.postgres else [])
    print(f"{'store':9} {'batches x chunks':>17} {'snapshot ms':>12} {'claim 4x4 ms':>13}")
    for kind in kinds:
        base = None
        for chunks in (args.chunks, 10 * args.chunks):
            snap, claim = asyncio.run(measure(kind, args.postgres, args.batches, chunks, args.rounds))
            ratio = f"  ({snap / base:.1f}x the snapshot at {args.chunks})" if base else ""
            base = base or snap
            print(f"{kind:9} {f'{args.batches} x {chunks}':>17} {snap:12.2f} {claim:13.2f}{ratio}")


if __name__ == "__main__":
    main()
