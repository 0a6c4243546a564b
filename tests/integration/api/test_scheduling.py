"""The scheduler in the whole app: projects' batches through the in-process app (official SDK) against the fake
upstream with four slots, on SQLite and on PostgreSQL. A small batch created after a big one of another project is
not stuck behind it, a running batch gets an estimated completion time, and a batch that would miss its window at
its fair share goes first, and says so (at_risk_since)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from appkeys import project_keys
from harness import FakeUpstream
from openai import OpenAI
from openai.types import Batch as SdkBatch
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.settings import Settings
from batchgate.store.factory import make_store

TERMINAL = {"completed", "failed", "expired", "cancelled"}


WINDOW_SCALE = 12 / 3600  # a "1h" window lasts 12 s, "24h" about 5 minutes


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path,
             fake_upstream_factory: Callable[[], FakeUpstream]) -> Settings:
    fake = fake_upstream_factory()
    fake.control(latency=0.02)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    # Four requests at a time, 20 ms each: about 200 requests/s to share, chunks of 50 requests.
    return Settings(data_dir=tmp_path, poll_interval=0.05, upstream=fake.base_url, upstream_concurrency=4,
                    chunk_size=50, database_url=url, window_scale=WINDOW_SCALE)


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
def clients(settings: Settings) -> Iterator[tuple[OpenAI, OpenAI, OpenAI]]:
    """SDK clients of three projects: alpha, beta and gamma."""
    switch_interval = sys.getswitchinterval()
    try:
        with TestClient(create_app(settings)) as http:
            yield tuple(  # type: ignore[misc]
                OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)
                for key in project_keys(settings, "alpha", "beta", "gamma"))
    finally:
        sys.setswitchinterval(switch_interval)


def submit(sdk: OpenAI, n: int, tag: str, window: str = "24h") -> SdkBatch:
    lines = [{"custom_id": f"{tag}{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "m", "messages": [{"role": "user", "content": f"{tag} {i}"}]}} for i in range(n)]
    upload = sdk.files.create(file=(f"{tag}.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                              purpose="batch")
    return sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window=window)


def wait(sdk: OpenAI, batch_id: str, until: Callable[[SdkBatch], bool], timeout: float = 120.0) -> SdkBatch:
    deadline = time.monotonic() + timeout
    batch = sdk.batches.retrieve(batch_id)
    while not until(batch) and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch_id)
    assert until(batch), batch
    return batch


def at_risk_since(b: SdkBatch) -> int | None:
    since = (b.model_extra or {}).get("at_risk_since")
    assert since is None or isinstance(since, int)
    return since


def done(b: SdkBatch) -> int:
    return 0 if b.request_counts is None else b.request_counts.completed + b.request_counts.failed


def test_a_small_batch_after_a_big_one_finishes_first_and_estimates_are_set(
    settings: Settings, clients: tuple[OpenAI, OpenAI, OpenAI],
) -> None:
    alpha, beta, _ = clients
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


def test_a_batch_that_would_miss_its_window_at_its_fair_share_goes_first(
    clients: tuple[OpenAI, OpenAI, OpenAI],
) -> None:
    alpha, beta, gamma = clients
    # two 24h batches fill the engine for about 15 s
    day = [submit(alpha, 1_500, "day-a"), submit(beta, 1_500, "day-b")]
    wait(alpha, day[0].id, lambda b: done(b) >= 300)  # the planner has measured the throughput by now
    # 900 requests in a 12 s window: at a third of ~200/s about 13.5 s, too late; first, about 4.5 s.
    # In creation order it would wait behind the rest of the 3,000 and expire.
    hour = submit(gamma, 900, "hour", window="1h")
    # and it says so (the extension field at_risk_since) while it goes first, not once it ended
    marked = wait(gamma, hour.id, lambda b: at_risk_since(b) is not None or b.status in TERMINAL)
    assert marked.status == "in_progress", marked
    assert hour.created_at <= (at_risk_since(marked) or 0) <= hour.created_at + 12
    finished = wait(gamma, hour.id, lambda b: b.status in TERMINAL)
    assert finished.status == "completed", finished
    assert at_risk_since(finished) is None
    assert done(finished) == 900
    others = [alpha.batches.retrieve(day[0].id), beta.batches.retrieve(day[1].id)]
    assert all(b.status == "in_progress" for b in others), others
    for sdk, b in zip((alpha, beta), day, strict=True):
        sdk.batches.cancel(b.id)
