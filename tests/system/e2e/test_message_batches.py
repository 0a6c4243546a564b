"""Anthropic's Message Batches against a real `batchgate serve`, through the official `anthropic` SDK: lines
translated to the fake upstream's chat completions, or sent to its own /v1/messages (`messages = "native"`), or
answered by the local `echo` model; live counts while a batch runs, Anthropic's errors before it ends, cancel,
delete. On SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic import Anthropic
from harness import BatchgateServer, FakeUpstream
from helpers import RawResponse, raw

Factory = Callable[..., BatchgateServer]
# Two requests at a time, a quarter second each: a 40-request batch runs about five seconds.
SLOW = {"BATCHGATE_UPSTREAM_CONCURRENCY": "2", "BATCHGATE_CHUNK_SIZE": "10"}


@pytest.fixture(params=["sqlite", "postgres"])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgres":
        return {"BATCHGATE_DATABASE_URL": request.getfixturevalue("pg_url")}
    return {}


@pytest.fixture
def clients() -> Iterator[Callable[[BatchgateServer], Anthropic]]:
    made: list[Anthropic] = []

    def make(server: BatchgateServer) -> Anthropic:
        made.append(Anthropic(base_url=server.url, api_key="test", max_retries=0, timeout=60.0))
        return made[-1]

    yield make
    for c in made:
        c.close()


def request(custom_id: str, text: str, model: str = "gpt-4o-mini", **params: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": {
        "model": model, "max_tokens": 50, "messages": [{"role": "user", "content": text}], **params}}


def wait(client: Anthropic, batch_id: str, predicate: Callable[[Any], bool], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if predicate(batch) or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def ended(b: Any) -> bool:
    return bool(b.processing_status == "ended")


def plain(server: BatchgateServer, method: str, path: str) -> RawResponse:
    return raw(server.url, method, path, headers={"x-api-key": "test"}, api_key=None)


def test_translated_to_chat_with_live_counts_errors_before_the_end_cancel_and_delete(
    backend_env: dict[str, str], server_factory: Factory, fake_upstream: FakeUpstream, tmp_path: Path,
    clients: Callable[[BatchgateServer], Anthropic],
) -> None:
    fake_upstream.control(latency=0.25)
    server = server_factory(data_dir=tmp_path / "data", env={**SLOW, **backend_env})
    client = clients(server)
    batch = client.messages.batches.create(requests=[  # type: ignore[misc]
        request(f"r{i}", f"number {i}", system="be brief") for i in range(40)])

    running = wait(client, batch.id, lambda b: b.request_counts.succeeded > 0 or ended(b))
    assert running.processing_status == "in_progress", running
    counts = running.request_counts
    assert counts.processing > 0 and counts.succeeded + counts.processing == 40  # live, and they add up

    early = plain(server, "GET", f"/v1/messages/batches/{batch.id}/results")
    assert early.status == 400
    assert early.json()["type"] == "error" and early.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as busy:
        client.messages.batches.delete(batch.id)
    assert "cancel it first" in busy.value.body["error"]["message"]  # type: ignore[index]

    assert client.messages.batches.cancel(batch.id).processing_status in ("canceling", "ended")
    done = wait(client, batch.id, ended)
    assert ended(done), done
    final = done.request_counts
    assert final.succeeded > 0 and final.canceled > 0 and final.succeeded + final.canceled == 40
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == sorted(f"r{i}" for i in range(40))
    kinds = Counter(r.result.type for r in results)
    assert kinds == {"succeeded": final.succeeded, "canceled": final.canceled}
    for r in results:
        if r.result.type == "succeeded":
            message = r.result.message
            i = r.custom_id[1:]
            assert message.content[0].text == f"echo: number {i}"  # type: ignore[union-attr]
            assert message.stop_reason == "end_turn" and message.model == "gpt-4o-mini"
            assert message.usage.input_tokens == 4  # "be brief number N": the system prompt went along
    stats = fake_upstream.stats()
    assert stats["by_path"].get("messages", 0) == 0 and stats["by_path"]["chat/completions"] >= final.succeeded

    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    assert plain(server, "GET", f"/v1/messages/batches/{batch.id}").json()["error"]["type"] == "not_found_error"


def test_native_messages_route(
    backend_env: dict[str, str], server_factory: Factory, fake_upstream: FakeUpstream, tmp_path: Path,
    clients: Callable[[BatchgateServer], Anthropic],
) -> None:
    fake_upstream.control(messages=True)
    server = server_factory(data_dir=tmp_path / "data", env={"BATCHGATE_UPSTREAM_MESSAGES": "native", **backend_env})
    client = clients(server)
    refusal = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    requests = [request(f"r{i}", f"hello {i}") for i in range(5)]
    requests.append(request("bad", "x", x_fake={"status": 400, "body": refusal}))
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    done = wait(client, batch.id, ended)
    assert (done.request_counts.succeeded, done.request_counts.errored) == (5, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    for i in range(5):
        ok = results[f"r{i}"]
        assert ok.type == "succeeded"
        assert ok.message.content[0].text == f"native: hello {i}"  # type: ignore[union-attr]
    bad = results["bad"]
    assert bad.type == "errored"
    assert bad.error.error.type == "invalid_request_error" and bad.error.error.message == "prompt is too long"
    stats = fake_upstream.stats()
    assert stats["by_path"].get("chat/completions", 0) == 0 and stats["by_path"]["messages"] == 6


def test_local_echo_model(
    backend_env: dict[str, str], server_factory: Factory, tmp_path: Path,
    clients: Callable[[BatchgateServer], Anthropic],
) -> None:
    server = server_factory(upstream=None, data_dir=tmp_path / "data", env=backend_env)
    client = clients(server)
    batch = client.messages.batches.create(requests=[  # type: ignore[misc]
        request("a", "first second third", model="echo", max_tokens=2),
        request("b", "keep this. drop that", model="echo", stop_sequences=["."]),
        request("c", "", model="echo", messages=[{"role": "user", "content": [{"type": "text", "text": "blocks"}]}]),
    ])
    done = wait(client, batch.id, ended)
    assert done.request_counts.succeeded == 3
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    a, b, c = results["a"], results["b"], results["c"]
    assert a.type == b.type == c.type == "succeeded"
    assert (a.message.content[0].text, a.message.stop_reason) == ("first second", "max_tokens")  # type: ignore[union-attr]
    assert (b.message.content[0].text, b.message.stop_reason, b.message.stop_sequence) == (  # type: ignore[union-attr]
        "keep this", "stop_sequence", ".")
    assert c.message.content[0].text == "blocks"  # type: ignore[union-attr]
    assert [x.id for x in client.messages.batches.list()] == [batch.id]
    assert [x.id for x in server.client().batches.list()] == []  # not on the OpenAI list


def test_kill_9_mid_batch_then_every_request_once(
    backend_env: dict[str, str], server_factory: Factory, fake_upstream: FakeUpstream, tmp_path: Path,
    clients: Callable[[BatchgateServer], Anthropic],
) -> None:
    fake_upstream.control(latency=0.1)
    server = server_factory(data_dir=tmp_path / "data", env={**SLOW, **backend_env})
    batch = clients(server).messages.batches.create(requests=[  # type: ignore[misc]
        request(f"k{i}", f"item {i}") for i in range(60)])
    wait(clients(server), batch.id, lambda b: b.request_counts.succeeded >= 10 or ended(b))
    server.kill()
    server.start()
    client = clients(server)
    done = wait(client, batch.id, ended)
    assert ended(done) and done.request_counts.succeeded == 60
    results = list(client.messages.batches.results(batch.id))
    assert Counter(r.custom_id for r in results) == Counter(f"k{i}" for i in range(60))  # each exactly once
    assert {r.result.type for r in results} == {"succeeded"}


def test_expired_requests(
    backend_env: dict[str, str], server_factory: Factory, fake_upstream: FakeUpstream, tmp_path: Path,
    clients: Callable[[BatchgateServer], Anthropic],
) -> None:
    fake_upstream.control(latency=1.0)  # two at a time, a second each: most are still waiting at the end
    env = {**SLOW, **backend_env, "BATCHGATE_WINDOW_SCALE": "0.00005"}  # 24 h -> about 4 s
    server = server_factory(data_dir=tmp_path / "data", env=env)
    client = clients(server)
    batch = client.messages.batches.create(requests=[  # type: ignore[misc]
        request(f"e{i}", f"item {i}") for i in range(30)])
    done = wait(client, batch.id, ended)
    counts = done.request_counts
    assert ended(done) and counts.expired > 0 and counts.succeeded + counts.expired == 30, counts
    kinds = Counter(r.result.type for r in client.messages.batches.results(batch.id))
    assert kinds == Counter({"succeeded": counts.succeeded, "expired": counts.expired}) - Counter()
