"""Anthropic's Message Batches API through the official `anthropic` SDK, unchanged, over the in-process app
(Starlette's TestClient as its http client), answered by the local `echo` model through the Messages <-> chat
translation. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic
from openai import OpenAI
from pgtools import pg_databases, pg_url
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.settings import Settings

__all__ = ["pg_databases", "pg_url"]


class App:
    def __init__(self, http: TestClient) -> None:
        self.http = http

    def key(self, project: str) -> str:
        return str(self.http.portal.call(self.http.app.state.ctx.auth.create_key, project))  # type: ignore[attr-defined]

    def anthropic(self, api_key: str = "test", bearer: bool = False) -> Anthropic:
        if bearer:  # recent SDKs' auth_token: `Authorization: Bearer`
            return Anthropic(base_url="http://testserver", auth_token=api_key, api_key=None, http_client=self.http,
                             max_retries=0)
        return Anthropic(base_url="http://testserver", api_key=api_key, http_client=self.http, max_retries=0)

    def openai(self, api_key: str = "test") -> OpenAI:
        return OpenAI(base_url="http://testserver/v1", api_key=api_key, http_client=self.http, max_retries=0)


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    settings = Settings(data_dir=tmp_path, poll_interval=0.05, database_url=url)
    switch_interval = sys.getswitchinterval()  # the worker thread changes it for the whole process
    try:
        with TestClient(create_app(settings)) as http:
            yield App(http)
    finally:
        sys.setswitchinterval(switch_interval)


def request(custom_id: str, text: str, **params: Any) -> dict[str, Any]:
    return {"custom_id": custom_id,
            "params": {"model": "echo", "max_tokens": 100, "messages": [{"role": "user", "content": text}], **params}}


def wait_ended(client: Anthropic, batch_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    batch = client.messages.batches.retrieve(batch_id)
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = client.messages.batches.retrieve(batch_id)
    assert batch.processing_status == "ended", batch
    return batch


def test_create_poll_and_read_translated_results(app: App) -> None:
    client = app.anthropic()
    requests = [
        request("plain", "say hello"),
        request("system", "hi there", system=[{"type": "text", "text": "be brief"}]),
        request("blocks", "", messages=[{"role": "user", "content": [{"type": "text", "text": "one"},
                                                                      {"type": "text", "text": "two"}]}]),
        request("stop", "alpha STOP beta", stop_sequences=["STOP"]),
        request("long", "a b c d e f", max_tokens=2, temperature=0.5, top_p=0.9),
        request("image", "", messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]),
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch._request_id is not None and batch._request_id.startswith("req_")  # the `request-id` header
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 6
    assert isinstance(batch.created_at, datetime) and isinstance(batch.expires_at, datetime)
    assert (batch.expires_at - batch.created_at).total_seconds() == 86_400
    assert batch.results_url is None and batch.ended_at is None

    batch = wait_ended(client, batch.id)
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 5, 1, 0, 0)
    assert batch.ended_at is not None and batch.results_url == f"http://testserver/v1/messages/batches/{batch.id}/results"

    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {r["custom_id"] for r in requests}
    plain = results["plain"]
    assert plain.type == "succeeded"
    message = plain.message
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "echo"
    assert [(b.type, b.text) for b in message.content] == [("text", "say hello")]  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 2)
    system = results["system"]
    assert system.type == "succeeded"
    assert system.message.usage.input_tokens == 4  # "be brief" + "hi there": the system prompt reached the model
    blocks = results["blocks"]
    assert blocks.type == "succeeded" and blocks.message.content[0].text == "one\n\ntwo"  # type: ignore[union-attr]
    stop = results["stop"]
    assert stop.type == "succeeded"
    assert (stop.message.stop_reason, stop.message.stop_sequence) == ("stop_sequence", "STOP")
    assert stop.message.content[0].text == "alpha "  # type: ignore[union-attr]
    long = results["long"]
    assert long.type == "succeeded" and long.message.stop_reason == "max_tokens"
    image = results["image"]  # the local models take text only: the engine's 400, in Anthropic's shape
    assert image.type == "errored"
    assert image.error.type == "error" and image.error.error.type == "invalid_request_error"
    assert "text" in image.error.error.message


def test_list_pages_and_the_two_apis_do_not_mix(app: App) -> None:
    client, oai = app.anthropic(), app.openai()
    ids = [client.messages.batches.create(requests=[request("r", f"n{i}")]).id for i in range(5)]  # type: ignore[list-item]
    upload = oai.files.create(file=("in.jsonl", json.dumps({
        "custom_id": "o", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "echo", "messages": [{"role": "user", "content": "x"}]}}).encode() + b"\n"), purpose="batch")
    openai_batch = oai.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")

    newest_first = ids[::-1]
    raw = client.messages.batches.with_raw_response.list(limit=2).http_response.json()
    assert [b["id"] for b in raw["data"]] == newest_first[:2]
    assert raw["has_more"] is True and raw["first_id"] == newest_first[0] and raw["last_id"] == newest_first[1]
    assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first  # the SDK follows after_id
    older = client.messages.batches.list(after_id=newest_first[1], limit=2)
    assert [b.id for b in older.data] == newest_first[2:4] and older.has_more
    newer = client.messages.batches.list(before_id=newest_first[3], limit=2)
    assert [b.id for b in newer.data] == newest_first[1:3] and newer.has_more
    newest = client.messages.batches.list(before_id=newest_first[1], limit=2)
    assert [b.id for b in newest.data] == newest_first[:1] and not newest.has_more

    assert [b.id for b in oai.batches.list()] == [openai_batch.id]  # no Message Batch on /v1/batches
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(openai_batch.id)


def test_cancel_then_delete(app: App) -> None:
    client = app.anthropic()
    batch = client.messages.batches.create(requests=[request(f"r{i}", f"n {i}") for i in range(20)])  # type: ignore[misc]
    cancelled = client.messages.batches.cancel(batch.id)
    assert cancelled.processing_status in ("canceling", "ended") and cancelled.cancel_initiated_at is not None
    ended = wait_ended(client, batch.id)
    counts = ended.request_counts
    assert counts.succeeded + counts.canceled == 20 and counts.errored == counts.expired == 0
    kinds = [r.result.type for r in client.messages.batches.results(batch.id)]
    assert sorted(kinds) == sorted(["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled)

    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.batches.cancel(batch.id)
    assert err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError) as gone:
        client.messages.batches.retrieve(batch.id)
    assert gone.value.body == {"type": "error", "error": {"type": "not_found_error", "message": gone.value.body[  # type: ignore[index]
        "error"]["message"]}, "request_id": gone.value.body["request_id"]}  # type: ignore[index]
    assert batch.id not in [b.id for b in client.messages.batches.list()]


def test_keys_projects_and_both_auth_headers(app: App) -> None:
    mine, theirs = app.key("team-a"), app.key("team-b")
    by_header, by_bearer = app.anthropic(mine), app.anthropic(mine, bearer=True)
    batch = by_header.messages.batches.create(requests=[request("r", "hi")])  # type: ignore[list-item]
    assert by_bearer.messages.batches.retrieve(batch.id).id == batch.id
    other = app.anthropic(theirs)
    with pytest.raises(anthropic.NotFoundError) as err:
        other.messages.batches.retrieve(batch.id)
    assert err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    for call in (other.messages.batches.cancel, other.messages.batches.delete):
        with pytest.raises(anthropic.NotFoundError):
            call(batch.id)
    assert [b.id for b in other.messages.batches.list()] == []
    with pytest.raises(anthropic.AuthenticationError) as unauth:
        app.anthropic("bg-wrong").messages.batches.list()
    assert unauth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


@pytest.mark.parametrize(("requests", "says"), [
    (None, "requests: Field required"),
    ([], "requests: List should have at least 1 item"),
    ([{"custom_id": "a b", "params": {"model": "echo", "max_tokens": 1, "messages": [{"role": "user",
                                                                                      "content": "x"}]}}],
     "requests.0.custom_id: String should match pattern"),
    ([request("a", "x"), request("a", "y")], "requests.1.custom_id: Duplicate custom_id 'a'"),
    ([{"custom_id": "a", "params": {"model": "echo", "messages": [{"role": "user", "content": "x"}]}}],
     "requests.0.params.max_tokens: Field required"),
    ([request("a", "x", messages=[])], "requests.0.params.messages: List should have at least 1 item"),
    ([request("a", "x"), request("b", "x", model="other")], "requests.1.params.model: every request"),
])
def test_bad_params_are_anthropic_400s(app: App, requests: Any, says: str) -> None:
    client = app.anthropic()
    body = {} if requests is None else {"requests": requests}
    with pytest.raises(anthropic.BadRequestError) as err:
        client.post("/v1/messages/batches", body=body, cast_to=object)
    assert err.value.status_code == 400
    error = err.value.body["error"]  # type: ignore[index]
    assert err.value.body["type"] == "error" and error["type"] == "invalid_request_error"  # type: ignore[index]
    assert error["message"].startswith(says), error


def test_a_model_nobody_serves_ends_the_batch_with_every_request_errored(app: App) -> None:
    client = app.anthropic()
    batch = client.messages.batches.create(  # type: ignore[misc]
        requests=[request(f"r{i}", "hi", model="claude-nowhere") for i in range(3)])
    ended = wait_ended(client, batch.id)
    assert ended.request_counts.errored == 3 and ended.request_counts.succeeded == 0
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == ["r0", "r1", "r2"]
    for r in results:
        assert r.result.type == "errored"
        assert r.result.error.error.type == "invalid_request_error"
        assert "claude-nowhere" in r.result.error.error.message
