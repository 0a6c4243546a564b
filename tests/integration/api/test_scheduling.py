"""The scheduler in the whole app: two projects' batches through the in-process app (official SDK) against the
fake upstream with four slots, on SQLite and on PostgreSQL. A small batch created after a big one of another
project is not stuck behind it, and a running batch gets an estimated completion time."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import FakeUpstream
from openai import OpenAI
from openai.types import Batch as SdkBatch
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.services.auth import AuthService
from batchgate.settings import Settings
from batchgate.store.factory import make_store

TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path,
             fake_upstream_factory: Callable[[], FakeUpstream]) -> Settings:
    fake = fake_upstream_factory()
    fake.control(latency=0.02)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    # Four requests at a time, 20 ms each: about 200 requests/s to share, chunks of 50 requests.
    return Settings(data_dir=tmp_path, poll_interval=0.05, upstream=fake.base_url, upstream_concurrency=4,
                    chunk_size=50, database_url=url)


def keys(settings: Settings, *projects: str) -> list[str]:
    async def go() -> list[str]:
        store = make_store(settings)
        await store.open()
        try:
            auth = AuthService(store)
            return [await auth.create_key(p) for p in projects]
        finally:
            await store.close()

    return asyncio.run(go())


def estimate(settings: Settings, batch_id: str) -> int | None:
    """The batch's estimated_completion_at as stored (the planner writes it; the API shows it as is)."""
    async def go() -> int | None:
        store = make_store(settings)
        await store.open()
        try:
            batch = await store.get_batch(batch_id)
            assert batch is not None
            return batch.estimated_completion_at
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def clients(settings: Settings) -> Iterator[tuple[OpenAI, OpenAI]]:
    alpha, beta = keys(settings, "alpha", "beta")
    switch_interval = sys.getswitchinterval()
    try:
        with TestClient(create_app(settings)) as http:
            a = OpenAI(base_url="http://testserver/v1", api_key=alpha, http_client=http, max_retries=0)
            b = OpenAI(base_url="http://testserver/v1", api_key=beta, http_client=http, max_retries=0)
            yield a, b
    finally:
        sys.setswitchinterval(switch_interval)


def submit(sdk: OpenAI, n: int, tag: str) -> SdkBatch:
    lines = [{"custom_id": f"{tag}{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "m", "messages": [{"role": "user", "content": f"{tag} {i}"}]}} for i in range(n)]
    upload = sdk.files.create(file=(f"{tag}.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                              purpose="batch")
    return sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")


def wait(sdk: OpenAI, batch_id: str, until: Callable[[SdkBatch], bool], timeout: float = 120.0) -> SdkBatch:
    deadline = time.monotonic() + timeout
    batch = sdk.batches.retrieve(batch_id)
    while not until(batch) and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch_id)
    assert until(batch), batch
    return batch


def done(b: SdkBatch) -> int:
    return 0 if b.request_counts is None else b.request_counts.completed + b.request_counts.failed


def test_a_small_batch_after_a_big_one_finishes_first_and_estimates_are_set(
    settings: Settings, clients: tuple[OpenAI, OpenAI],
) -> None:
    alpha, beta = clients
    big = submit(alpha, 2_000, "big")
    # the big batch is running (the engine is full of it) before the small one of another project arrives
    wait(alpha, big.id, lambda b: b.status == "in_progress" and done(b) >= 100)
    small = submit(beta, 10, "small")
    small_done = wait(beta, small.id, lambda b: b.status in TERMINAL)
    big_now = alpha.batches.retrieve(big.id)
    assert small_done.status == "completed"
    # In creation order the small batch would wait for all 40 of the big one's chunks; at its fair share it needs
    # a fraction of a second of the engine.
    assert big_now.status == "in_progress", big_now
    assert done(big_now) < 1_000
    # The big batch gets an estimate once its rate is measured (about a second of progress).
    deadline = time.monotonic() + 60
    at = estimate(settings, big.id)
    while at is None and time.monotonic() < deadline and alpha.batches.retrieve(big.id).status == "in_progress":
        time.sleep(0.2)
        at = estimate(settings, big.id)
    assert at is not None
    assert big.created_at <= at <= big.created_at + 3_600
    finished = wait(alpha, big.id, lambda b: b.status in TERMINAL)
    assert finished.status == "completed" and done(finished) == 2_000
    assert small_done.completed_at is not None and finished.completed_at is not None
    assert small_done.completed_at <= finished.completed_at
