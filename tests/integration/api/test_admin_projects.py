"""/v1/admin/projects, the batch's estimated_completion_at and the dashboard showing both, in one process: the app
factory's lifespan under Starlette's TestClient, driven by the official `openai` SDK (its generic client.get /
client.post for the admin routes, which the SDK has no resource for). The worker is off: the tests move batches
through the store, as a worker and its planner would."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.dashboard import views
from batchgate.domain.work import ChunkSpec
from batchgate.services.auth import AuthService
from batchgate.settings import Settings
from batchgate.store.sqlite import SQLiteStore


@dataclass
class Api:
    http: TestClient
    settings: Settings
    admin: OpenAI
    alice: OpenAI


def client(http: TestClient, key: str) -> OpenAI:
    return OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path, worker=False)

    async def keys() -> tuple[str, str]:
        store = SQLiteStore(settings.db_path)
        await store.open()
        try:
            auth = AuthService(store)
            return await auth.create_key("ops", admin=True), await auth.create_key("alice")
        finally:
            await store.close()

    admin_key, alice_key = asyncio.run(keys())
    with TestClient(create_app(settings)) as http:
        yield Api(http, settings, client(http, admin_key), client(http, alice_key))


def get(c: OpenAI, path: str) -> Any:
    return c.get(path, cast_to=object)


def post(c: OpenAI, path: str, body: Any) -> Any:
    return c.post(path, cast_to=object, body=body)


def error_of(e: openai.APIStatusError) -> dict[str, Any]:
    body = e.body
    assert isinstance(body, dict), body
    return body


def test_projects_list_their_weights_and_admins_set_them(api: Api) -> None:
    listed = get(api.admin, "/admin/projects")
    assert listed == {"object": "list", "data": [
        {"id": "alice", "object": "project", "name": "alice", "weight": 1.0},
        {"id": "ops", "object": "project", "name": "ops", "weight": 1.0},
    ], "first_id": "alice", "last_id": "ops", "has_more": False}

    assert post(api.admin, "/admin/projects/alice", {"weight": 3}) == {
        "id": "alice", "object": "project", "name": "alice", "weight": 3.0}
    # a project may get its weight before it has a key; it is listed from then on
    assert post(api.admin, "/admin/projects/later", {"weight": 0.5})["weight"] == 0.5
    assert post(api.admin, "/admin/projects/alice", {"weight": 1000})["weight"] == 1000.0
    weights = {p["name"]: p["weight"] for p in get(api.admin, "/admin/projects")["data"]}
    assert weights == {"alice": 1000.0, "later": 0.5, "ops": 1.0}
    assert get(api.admin, "/admin/projects/later") == {"id": "later", "object": "project", "name": "later",
                                                       "weight": 0.5}
    assert get(api.admin, "/admin/projects/ops")["weight"] == 1.0


@pytest.mark.parametrize(("weight", "code"), [
    (0, "invalid_value"), (-1, "invalid_value"), (1000.5, "invalid_value"), (1e300, "invalid_value"),
    (True, "invalid_type"), ("2", "invalid_type"), ([2], "invalid_type"), ({"w": 2}, "invalid_type"),
    (None, "missing_required_parameter"),
])
def test_bad_weights_are_400_naming_weight(api: Api, weight: Any, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        post(api.admin, "/admin/projects/alice", {"weight": weight})
    assert caught.value.status_code == 400
    err = error_of(caught.value)
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", code, "weight")
    assert get(api.admin, "/admin/projects/alice")["weight"] == 1.0  # unchanged


def test_bad_bodies_and_names_are_400(api: Api) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        post(api.admin, "/admin/projects/alice", {})
    assert error_of(caught.value)["param"] == "weight"
    raw = api.http.post("/v1/admin/projects/alice", content=b"{not json",
                        headers={"Authorization": f"Bearer {api.admin.api_key}", "Content-Type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.BadRequestError) as caught:
        post(api.admin, "/admin/projects/bad name!", {"weight": 2})
    assert (error_of(caught.value)["code"], error_of(caught.value)["param"]) == ("invalid_value", "project")


def test_only_admin_keys_may_read_or_set_weights(api: Api) -> None:
    for call in (lambda c: get(c, "/admin/projects"), lambda c: get(c, "/admin/projects/alice"),
                 lambda c: post(c, "/admin/projects/alice", {"weight": 5})):
        with pytest.raises(openai.PermissionDeniedError) as denied:
            call(api.alice)
        assert (denied.value.status_code, error_of(denied.value)["code"]) == (403, "insufficient_permissions")
        with pytest.raises(openai.AuthenticationError) as unknown:
            call(client(api.http, "bg-not-a-key"))
        assert (unknown.value.status_code, error_of(unknown.value)["code"]) == (401, "invalid_api_key")
    # a project key's body is never read: it learns nothing but the refusal, even from a bad body
    with pytest.raises(openai.PermissionDeniedError):
        post(api.alice, "/admin/projects/alice", {"weight": "heavy"})
    assert get(api.admin, "/admin/projects/alice")["weight"] == 1.0


def test_an_unknown_project_is_404(api: Api) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        get(api.admin, "/admin/projects/nobody")
    assert caught.value.status_code == 404
    assert (error_of(caught.value)["type"], error_of(caught.value)["param"]) == ("invalid_request_error", "project")


def test_estimated_completion_at_is_on_every_batch(api: Api) -> None:
    line = {"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}
    upload = api.alice.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    batch = api.alice.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                     completion_window="24h")
    created = batch.model_dump()
    assert "estimated_completion_at" in created and created["estimated_completion_at"] is None

    async def run_and_estimate(at: int) -> None:  # what the worker and its planner do, through the same store
        store = SQLiteStore(api.settings.db_path)
        await store.open()
        try:
            task = await store.claim_batch_task("w", now=1.0, lease=10)
            if task is not None:
                assert await store.start_batch(batch.id, task.generation, [ChunkSpec(0, 1, 1, 0, 10, 1)], "echo",
                                               now=2)
            await store.set_estimates([(batch.id, at)])
        finally:
            await store.close()

    asyncio.run(run_and_estimate(2_000_000_000))
    running = api.alice.batches.retrieve(batch.id)
    assert running.status == "in_progress"
    assert running.model_dump()["estimated_completion_at"] == 2_000_000_000
    listed = [b.model_dump() for b in api.alice.batches.list()]
    assert [b["estimated_completion_at"] for b in listed] == [2_000_000_000]
    # the batch's event stream carries it too
    with api.http.stream("GET", f"/v1/batches/{batch.id}/events",
                         headers={"Authorization": f"Bearer {api.alice.api_key}"}) as events:
        for raw in events.iter_lines():
            if raw.startswith("data: "):
                assert json.loads(raw[len("data: "):])["estimated_completion_at"] == 2_000_000_000
                break
    # once it stops running, it has no estimate any more
    cancelled = api.alice.batches.cancel(batch.id)
    assert cancelled.status == "cancelling" and cancelled.model_dump()["estimated_completion_at"] is None


def dashboard(api: Api, path: str, key: str) -> str:
    r = api.http.get(path, headers={"Cookie": f"bg_session={key}"})
    assert r.status_code == 200, r.text[:300]
    return html.unescape(r.text)


def cells(page: str, cls: str) -> dict[str, str]:
    """Each project row's cell of class `cls`, by project name."""
    rows = re.findall(r'<tr data-project="([^"]+)">(.*?)</tr>', page, re.S)
    out = {}
    for name, row in rows:
        m = re.search(rf'class="num {cls}">([^<]*)<', row)
        if m:
            out[name] = m.group(1)
    return out


def test_the_dashboard_shows_weights(api: Api) -> None:
    post(api.admin, "/admin/projects/alice", {"weight": 3})
    admin_page = dashboard(api, "/ui/projects", str(api.admin.api_key))
    assert cells(admin_page, "weight") == {"alice": "3", "ops": "1"}
    assert cells(admin_page, "share") == {"alice": "75.0%", "ops": "25.0%"}
    own = dashboard(api, "/ui/projects", str(api.alice.api_key))  # a project key sees its own project only
    assert cells(own, "weight") == {"alice": "3"} and "ops" not in own.split("<main>")[1]


def test_the_batch_page_shows_the_estimate(api: Api) -> None:
    line = {"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}
    upload = api.alice.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    batch = api.alice.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                     completion_window="24h")
    key = str(api.alice.api_key)
    assert 'id="estimate"' not in dashboard(api, f"/ui/batches/{batch.id}", key)  # validating: no estimate row

    async def start(estimate: int | None) -> None:
        store = SQLiteStore(api.settings.db_path)
        await store.open()
        try:
            task = await store.claim_batch_task("w", now=1.0, lease=10)
            if task is not None:
                assert await store.start_batch(batch.id, task.generation, [ChunkSpec(0, 1, 1, 0, 10, 1)], "echo",
                                               now=2)
            await store.set_estimates([(batch.id, estimate)])
        finally:
            await store.close()

    asyncio.run(start(None))
    page = dashboard(api, f"/ui/batches/{batch.id}", key)
    assert re.search(r'id="estimate">.*?not yet', page, re.S)
    at = int(time.time()) + 7200
    asyncio.run(start(at))
    page = dashboard(api, f"/ui/batches/{batch.id}", key)
    shown = re.search(r'id="estimate">(.*?)</dd>', page, re.S)
    assert shown and views.when(at) in shown.group(1) and "left" in shown.group(1)
