"""GET /v1/batches/{id}/events: server-sent progress, read with a real HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness import BatchgateServer
from helpers import assert_envelope, chat_line, raw, submit_batch, unique, wait_for_batch

from batchgate.api import events
from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.services.auth import Principal
from batchgate.services.batches import BatchService
from batchgate.store.sqlite import SQLiteStore

ORDER = ["validating", "in_progress", "finalizing", "completed"]


@pytest.fixture(scope="module")
def server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory(env={"BATCHGATE_LOG_LEVEL": "debug", "BATCHGATE_CHUNK_SIZE": "1"})


def open_stream(server: BatchgateServer, batch_id: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/v1/batches/{batch_id}/events", headers={"Authorization": "Bearer test"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")
    assert response.getheader("x-request-id")
    return conn, response


def read_events(response: http.client.HTTPResponse, limit: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) per event, until the server ends the stream; comments are skipped."""
    name, data = "", ""
    while limit:
        line = response.readline()
        if not line:
            return
        text = line.decode().rstrip("\n")
        if text.startswith(":"):
            continue
        if text.startswith("event: "):
            name = text[len("event: "):]
        elif text.startswith("data: "):
            data += text[len("data: "):]
        elif text == "" and data:
            yield name, json.loads(data)
            limit -= 1
            name, data = "", ""


def test_progress_events_in_order_until_completed(server: BatchgateServer) -> None:
    client = server.client()
    lines = [chat_line(unique(), x_fake={"latency": 0.7 * i}) for i in range(1, 4)]
    batch = submit_batch(client, lines)
    conn, response = open_stream(server, batch.id)
    try:
        received = list(read_events(response))
    finally:
        conn.close()
    assert received, "no events"
    assert {name for name, _ in received} == {"batch.updated"}
    batches = [data for _, data in received]
    statuses = [b["status"] for b in batches]
    assert statuses[-1] == "completed" and "in_progress" in statuses, statuses
    assert [ORDER.index(s) for s in statuses] == sorted(ORDER.index(s) for s in statuses), statuses
    done = [b["request_counts"]["completed"] for b in batches]
    assert done == sorted(done) and done[-1] == 3, done
    seen = [(b["status"], json.dumps(b["request_counts"])) for b in batches]
    assert len(seen) == len(set(seen)), "an event was sent without a change"
    assert batches[-1]["output_file_id"] and batches[-1]["id"] == batch.id
    assert batches[-1] == client.batches.with_raw_response.retrieve(batch.id).http_response.json()


def test_terminal_batch_gets_one_event_and_unknown_is_404(server: BatchgateServer) -> None:
    client = server.client()
    batch = wait_for_batch(client, submit_batch(client, [chat_line(unique())]).id)
    conn, response = open_stream(server, batch.id)
    try:
        received = list(read_events(response))
    finally:
        conn.close()
    assert [(n, d["status"]) for n, d in received] == [("batch.updated", "completed")]
    assert_envelope(raw(server.base_url, "GET", "/batches/batch_nope/events"), 404)


def test_stream_stops_when_the_client_goes_away(server: BatchgateServer) -> None:
    client = server.client()
    batch = submit_batch(client, [chat_line(unique(), x_fake={"latency": 10})])
    conn, response = open_stream(server, batch.id)
    request_id = response.getheader("x-request-id")
    assert next(read_events(response))[0] == "batch.updated"
    conn.close()
    wanted = f"event stream of {batch.id} closed after"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and wanted not in server.log_tail(1_000_000):
        time.sleep(0.1)
    line = next(ln for ln in server.log_tail(1_000_000).splitlines() if wanted in ln)
    assert "client went away" in line and f"request_id={request_id}" in line
    client.batches.cancel(batch.id)


def test_heartbeat_comments_while_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator itself, on a real SQLite store, with the clock shrunk: comments while quiet, an event
    on each change, and the end after a terminal status."""
    monkeypatch.setattr(events, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.05)

    async def go() -> list[bytes]:
        store = SQLiteStore(tmp_path / "db.sqlite3")
        await store.open()
        try:
            b = Batch("batch_1", "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                      created_at=1, expires_at=10**10)
            await store.insert_batch(b)
            c: Any = SimpleNamespace(batches=BatchService(store))
            stream = events._changes(c, Principal("p"), b)
            out = [await anext(stream), await anext(stream)]  # the first event, then a heartbeat
            await store.request_cancel("batch_1", now=2)
            out.append(await anext(stream))
            task = await store.claim_batch_task("w", now=3.0, lease=10)
            assert task is not None
            assert await store.finish_batch("batch_1", task.generation, BatchStatus.CANCELLED, 4, None, None,
                                            b.request_counts)
            out += [chunk async for chunk in stream]
            return out
        finally:
            await store.close()

    chunks = asyncio.run(go())
    assert chunks[1] == b": keep-alive\n\n"
    statuses = [json.loads(c.split(b"data: ", 1)[1])["status"] for c in chunks if c.startswith(b"event: ")]
    assert statuses == ["validating", "cancelling", "cancelled"]
