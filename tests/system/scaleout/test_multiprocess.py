"""Two API processes and three worker processes on one PostgreSQL database and one S3 server.

A batch is submitted through one API process and watched through the other; one worker is killed with
SIGKILL while it holds chunks, and the others take its chunks over once its leases run out. Every custom_id
appears exactly once across the output and error files. The issue's full 20,000 requests take about 16 s on
a 2-core machine; SCALEOUT_REQUESTS=N runs another size.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from harness import FakeUpstream, http_json
from helpers import assert_exactly_once, chat_line, submit_batch, wait_for_batch
from s3tools import MotoServer

from .cluster import Cluster, WorkerProcess

REQUESTS = int(os.environ.get("SCALEOUT_REQUESTS", "20000"))
LEASE = 2.0
ENV = {
    "BATCHGATE_LEASE_SECONDS": str(LEASE),
    "BATCHGATE_CHUNK_SIZE": "100",
    "BATCHGATE_UPSTREAM_CONCURRENCY": "64",
    "BATCHGATE_LOG_LEVEL": "info",
}


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log")
    server.create_bucket("batchgate")
    yield server
    server.stop()


@pytest.fixture
def cluster(
    tmp_path: Path, pg_url: str, moto: MotoServer, fake_upstream_factory: Any
) -> Iterator[tuple[Cluster, FakeUpstream, str]]:
    fake: FakeUpstream = fake_upstream_factory()
    env = {**ENV, **moto.env("batchgate", "cluster"), "BATCHGATE_DATABASE_URL": pg_url}
    c = Cluster(tmp_path, fake.base_url, env, apis=2, workers=3)
    try:
        yield c, fake, pg_url
    finally:
        c.close()


async def _fetch(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def held_chunks(url: str, w: WorkerProcess) -> dict[int, int]:
    """Unfinished chunks whose live lease this worker holds: {idx: generation}."""
    found = asyncio.run(_fetch(
        url, "SELECT idx, generation FROM chunks WHERE lease_owner LIKE $1 AND NOT done "
        "AND lease_until > extract(epoch FROM clock_timestamp())", w.owner_pattern))
    return {r[0]: r[1] for r in found}


def test_two_apis_three_workers_one_killed(cluster: tuple[Cluster, FakeUpstream, str]) -> None:
    c, fake, url = cluster
    api_a, api_b = c.apis
    victim, *survivors = c.workers
    health = [http_json("GET", api.url + "/health") for api in c.apis]
    assert health == [{"status": "ok", "worker": False}] * 2  # serve --no-worker: API only

    ids = [f"req-{i:05d}" for i in range(REQUESTS)]
    batch = submit_batch(api_a.client(), [chat_line(cid, cid) for cid in ids])
    watcher = api_b.client()

    # Kill the victim the moment it holds chunk leases mid-batch.
    deadline = time.monotonic() + 120
    held: dict[int, int] = {}
    while not held:
        assert time.monotonic() < deadline, "the victim never claimed a chunk\n" + c.logs()
        assert watcher.batches.retrieve(batch.id).status != "completed", "finished before the kill\n" + c.logs()
        held = held_chunks(url, victim)
        if not held:
            time.sleep(0.02)
    victim.kill9()
    killed_at = time.monotonic()
    assert victim.proc.returncode == -9

    done = wait_for_batch(watcher, batch.id, timeout=240)
    elapsed = time.monotonic() - killed_at
    assert done.status == "completed", (done, c.logs())
    outputs, errors = assert_exactly_once(watcher, done, ids)
    assert not errors
    assert all(outputs[cid]["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {cid}" for cid in ids)

    # The chunks the victim held were finished by the others, under newer fencing generations.
    after = asyncio.run(_fetch(url, "SELECT idx, generation, done, lease_owner FROM chunks WHERE idx = ANY($1)",
                               list(held)))
    assert all(r["done"] and r["generation"] > held[r["idx"]] for r in after), after
    assert not any(str(r["lease_owner"]).split(":")[1] == str(victim.proc.pid) for r in after), after
    print(f"\n{REQUESTS} requests; killed a worker holding {len(held)} chunks; "
          f"batch completed {elapsed:.1f}s after the kill (lease {LEASE}s)")

    # Graceful stop: SIGTERM, exit 0, nothing left leased.
    for w in survivors:
        assert w.terminate() == 0, w.log_tail()
    owners = asyncio.run(_fetch(url, "SELECT lease_owner FROM chunks WHERE NOT done AND lease_until > 0 "
                                     "UNION SELECT lease_owner FROM batches WHERE lease_until > 0"))
    assert owners == []
    assert fake.stats()["total"] >= REQUESTS

