"""A batch at risk of missing its window says so: `at_risk_since` on the batch object (retrieve, list), an event on
its batch's stream when it changes, and a badge on the dashboard's batch page and list. In one process: the app
factory's lifespan under Starlette's TestClient, driven by the official `openai` SDK. The worker is off: the tests
mark the batch through the store, as a worker's planner does (the planner's side: tests/integration/worker)."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types import Batch as SdkBatch
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.dashboard import views
from batchgate.domain.work import ChunkSpec
from batchgate.services.auth import AuthService
from batchgate.settings import Settings
from batchgate.store.sqlite import SQLiteStore

SINCE = 1_900_000_000
BADGE = "at risk of its deadline: goes first"


@dataclass
class Api:
    http: TestClient
    settings: Settings
    sdk: OpenAI


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path, worker=False)

    async def key() -> str:
        store = SQLiteStore(settings.db_path)
        await store.open()
        try:
            return await AuthService(store).create_key("alice")
        finally:
            await store.close()

    alice = asyncio.run(key())
    with TestClient(create_app(settings)) as http:
        yield Api(http, settings, OpenAI(base_url="http://testserver/v1", api_key=alice, http_client=http,
                                         max_retries=0))


def running(api: Api) -> SdkBatch:
    """A batch of one line, created through the API and started through the store (as a worker would)."""
    line = {"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}
    upload = api.sdk.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    batch = api.sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")

    async def start() -> None:
        store = SQLiteStore(api.settings.db_path)
        await store.open()
        try:
            task = await store.claim_batch_task("w", now=1.0, lease=10)
            assert task is not None and task.batch.id == batch.id
            assert await store.start_batch(batch.id, task.generation, [ChunkSpec(0, 1, 1, 0, 10, 1)], "echo", now=2)
        finally:
            await store.close()

    asyncio.run(start())
    return api.sdk.batches.retrieve(batch.id)


def mark(api: Api, batch_id: str, since: int | None) -> None:
    """What the planner writes when the batch becomes at risk (since when), or no longer is (None)."""
    async def go() -> None:
        store = SQLiteStore(api.settings.db_path)
        await store.open()
        try:
            await store.set_at_risk([(batch_id, since)])
        finally:
            await store.close()

    asyncio.run(go())


def extra(b: SdkBatch) -> dict[str, Any]:
    return b.model_extra or {}


def dashboard(api: Api, path: str) -> str:
    r = api.http.get(path, headers={"Cookie": f"bg_session={api.sdk.api_key}"})
    assert r.status_code == 200, r.text[:300]
    return html.unescape(r.text)


def test_at_risk_since_is_on_every_batch_object_while_it_runs_at_risk(api: Api) -> None:
    batch = running(api)
    assert batch.status == "in_progress"
    assert "at_risk_since" in extra(batch) and extra(batch)["at_risk_since"] is None
    mark(api, batch.id, SINCE)
    assert extra(api.sdk.batches.retrieve(batch.id))["at_risk_since"] == SINCE
    assert [extra(b)["at_risk_since"] for b in api.sdk.batches.list()] == [SINCE]
    # once it stops running it is no longer at risk, whatever the column still says
    cancelled = api.sdk.batches.cancel(batch.id)
    assert cancelled.status == "cancelling" and extra(cancelled)["at_risk_since"] is None


def test_a_paused_batch_is_not_shown_at_risk(api: Api) -> None:
    batch = running(api)
    mark(api, batch.id, SINCE)
    paused = api.sdk.post(f"/batches/{batch.id}/pause", cast_to=SdkBatch, body={})
    assert extra(paused)["paused"] is True and extra(paused)["at_risk_since"] is None


def test_the_events_of_a_batch_say_when_it_becomes_at_risk(api: Api) -> None:
    batch = running(api)
    with api.http.stream("GET", f"/v1/batches/{batch.id}/events",
                         headers={"Authorization": f"Bearer {api.sdk.api_key}"}) as events:
        seen: list[int | None] = []
        for raw in events.iter_lines():
            assert not raw.startswith(":"), f"a keep-alive, not an event, after {seen}"  # 15 s without one
            if raw.startswith("data: "):
                seen.append(json.loads(raw[len("data: "):])["at_risk_since"])
                if len(seen) == 1:
                    mark(api, batch.id, SINCE)  # nothing else changes: the next event is for this alone
                elif len(seen) == 2:
                    mark(api, batch.id, None)
                else:
                    break
    assert seen == [None, SINCE, None]


def test_the_dashboard_shows_a_batch_at_risk(api: Api) -> None:
    batch = running(api)
    assert BADGE not in dashboard(api, f"/ui/batches/{batch.id}")
    assert BADGE not in dashboard(api, "/ui/batches")
    mark(api, batch.id, SINCE)
    page = dashboard(api, f"/ui/batches/{batch.id}")
    assert 'id="at-risk"' in page and BADGE in page
    assert f"at risk of missing it since {views.when(SINCE)}" in page
    listed = dashboard(api, "/ui/batches")
    row = listed.split(f'data-batch="{batch.id}"')[1].split("</tr>")[0]
    assert BADGE in row
    api.sdk.batches.cancel(batch.id)
    assert BADGE not in dashboard(api, f"/ui/batches/{batch.id}")
