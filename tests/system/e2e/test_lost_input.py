"""A batch's input file deleted, or its bytes lost, while the batch runs.

Deleted through the API: the file is gone from list/retrieve/content at once, but its bytes stay until the batch
ends, and the batch completes normally (as on OpenAI); then the bytes are purged. Lost behind batchgate's back (the
blob removed from disk or S3): the requests not yet run fail once with `input_file_unavailable`, the batch ends
with every result it has, and the log says so in a handful of lines. Each test runs on SQLite with local files
and on PostgreSQL with S3 (moto), against a real `batchgate serve` through the openai SDK.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer, FakeUpstream
from helpers import assert_exactly_once, chat_line, jsonl, wait_for_batch, wait_until
from openai import OpenAI
from pgtools import pg_databases, pg_url
from s3tools import MotoServer

__all__ = ["pg_databases", "pg_url"]  # fixtures the postgres-s3 backend uses

REQUESTS = 400
# 20 requests a chunk, 8 at a time, 100 ms each: about 5 s a batch, so it is caught mid-way with most chunks unread.
SERVER_ENV = {"BATCHGATE_CHUNK_SIZE": "20", "BATCHGATE_UPSTREAM_CONCURRENCY": "8",
              "BATCHGATE_REQUEST_TIMEOUT": "60", "BATCHGATE_LOG_LEVEL": "info"}
LATENCY = 0.1
# Lines about one lost input that a batch may log: its notice, its finalizer's, a few more. Before, 9,152.
FEW_LINES = 6
_buckets = itertools.count()


@dataclass
class Backend:
    name: str
    data_dir: Path
    env: dict[str, str]
    blob_exists: Callable[[str], bool]
    remove_blob: Callable[[str], None]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


# Requested before server_factory by the tests: the server stops before its database is dropped.
@pytest.fixture(params=["sqlite-local", "postgres-s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    data_dir = tmp_path / "data"
    if request.param == "sqlite-local":
        blobs = data_dir / "files"
        return Backend(request.param, data_dir, {}, lambda key: (blobs / key).exists(),
                       lambda key: (blobs / key).unlink())
    url: str = request.getfixturevalue("pg_url")
    s3: MotoServer = request.getfixturevalue("moto")
    bucket = f"lost-input-{next(_buckets)}"
    s3.create_bucket(bucket)
    client: Any = s3.client()

    def exists(key: str) -> bool:
        return bool(client.list_objects_v2(Bucket=bucket, Prefix=f"bg/{key}").get("KeyCount"))

    return Backend(request.param, data_dir, {**s3.env(bucket, "bg"), "BATCHGATE_DATABASE_URL": url}, exists,
                   lambda key: client.delete_object(Bucket=bucket, Key=f"bg/{key}"))


def start(server_factory: Any, backend: Backend, fake: FakeUpstream, **env: str) -> BatchgateServer:
    fake.control(latency=LATENCY)
    server: BatchgateServer = server_factory(data_dir=backend.data_dir, env={**SERVER_ENV, **backend.env, **env})
    return server


def submit(client: OpenAI, lines: list[dict[str, Any]]) -> tuple[str, str]:
    f = client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    return f.id, b.id


def completed_at_least(n: int) -> Callable[[Any], bool]:
    return lambda b: b.request_counts is not None and b.request_counts.completed >= n


def entries(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines() if line.strip()]


def log_lines_about(server: BatchgateServer, *needles: str) -> list[str]:
    return [line for line in server.log_tail(50_000_000).splitlines() if any(n in line for n in needles)]


def accounted(client: OpenAI, batch: Any, ids: list[str]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Every request once across output and error files: each known custom_id once, and one line with custom_id
    null for each request whose input could not be read. Returns the lines by custom_id, and the null ones."""
    lines = entries(client, batch.output_file_id) + entries(client, batch.error_file_id)
    known = Counter(e["custom_id"] for e in lines if e["custom_id"] is not None)
    assert not [cid for cid, n in known.items() if n > 1], "a custom_id written twice"
    assert set(known) <= set(ids)
    unknown = [e for e in lines if e["custom_id"] is None]
    counts = batch.request_counts
    assert len(lines) == counts.total == len(ids) and counts.completed + counts.failed == counts.total
    assert counts.completed == len(entries(client, batch.output_file_id))
    return {e["custom_id"]: e for e in lines if e["custom_id"] is not None}, unknown


def test_deleting_the_input_of_a_running_batch(
    backend: Backend, server_factory: Any, fake_upstream: FakeUpstream
) -> None:
    server = start(server_factory, backend, fake_upstream)
    client = server.client()
    ids = [f"req-{i:04d}" for i in range(REQUESTS)]
    file_id, batch_id = submit(client, [chat_line(cid) for cid in ids])
    wait_until(client, batch_id, completed_at_least(40), timeout=60)

    deleted = client.files.delete(file_id)
    assert deleted.deleted is True and deleted.id == file_id
    # Gone from every API at once ...
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(file_id)
    assert file_id not in [f.id for f in client.files.list(limit=10_000)]
    with pytest.raises(openai.NotFoundError):
        client.files.delete(file_id)
    # ... but its bytes stay while the batch reads them.
    assert backend.blob_exists(file_id)

    # A batch created from the deleted file fails exactly as one from a file that never existed.
    late = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    never = client.batches.create(input_file_id="file-nosuchfile00000000000", endpoint="/v1/chat/completions",
                                  completion_window="24h")
    late_done, never_done = (wait_for_batch(client, b.id, timeout=30) for b in (late, never))
    assert late_done.status == never_done.status == "failed"
    assert late_done.errors is not None and never_done.errors is not None
    late_error, never_error = late_done.errors.data[0], never_done.errors.data[0]
    assert (late_error.code, late_error.param) == (never_error.code, never_error.param) == ("invalid_request",
                                                                                           "file_id")
    assert late_error.message == (never_error.message or "").replace("file-nosuchfile00000000000", file_id)

    done = wait_for_batch(client, batch_id, timeout=90)
    assert done.status == "completed", done
    outputs, errors = assert_exactly_once(client, done, ids)
    assert not errors and len(outputs) == REQUESTS
    assert "Traceback" not in server.log_tail(50_000_000)
    assert len(log_lines_about(server, file_id, "FileNotFoundError", "missing from storage")) <= FEW_LINES

    # The batch has ended: the worker's chore (every 5 s) purges the bytes.
    deadline = time.monotonic() + 30
    while backend.blob_exists(file_id):
        assert time.monotonic() < deadline, "the deleted input's bytes were never purged"
        time.sleep(0.2)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)
    assert client.files.content(done.output_file_id).content  # the batch's own files are untouched


def test_input_bytes_lost_behind_batchgates_back(
    backend: Backend, server_factory: Any, fake_upstream: FakeUpstream
) -> None:
    server = start(server_factory, backend, fake_upstream)
    client = server.client()
    ids = [f"req-{i:04d}" for i in range(REQUESTS)]
    file_id, batch_id = submit(client, [chat_line(cid) for cid in ids])
    before = wait_until(client, batch_id, completed_at_least(40), timeout=60).request_counts
    assert before is not None and before.completed < REQUESTS // 2
    backend.remove_blob(file_id)  # an operator cleaning the disk or the bucket

    done = wait_for_batch(client, batch_id, timeout=90)
    assert done.status == "completed", done
    known, unknown = accounted(client, done, ids)
    assert done.request_counts is not None and done.request_counts.completed >= before.completed
    assert unknown, "some requests could not be read"
    for e in unknown:
        assert e["response"] is None and e["error"]["code"] == "input_file_unavailable"
        assert file_id in e["error"]["message"] and "custom_id is unknown" in e["error"]["message"]
    # Requests whose input was read before the bytes went keep their custom_id, whatever their outcome.
    assert len(known) + len(unknown) == REQUESTS
    assert all(known[cid]["response"]["status_code"] == 200 for cid in known
               if known[cid]["error"] is None)

    log = server.log_tail(50_000_000)
    assert "Traceback" not in log
    about = log_lines_about(server, file_id, "FileNotFoundError", "input_file_unavailable")
    assert 1 <= len(about) <= FEW_LINES, about


@pytest.mark.parametrize(("backend", "ending"), [
    ("sqlite-local", "cancel"), ("postgres-s3", "cancel"), ("sqlite-local", "expire"),
], indirect=["backend"])
def test_a_batch_whose_input_is_lost_can_still_be_cancelled_or_expire(
    backend: Backend, server_factory: Any, fake_upstream: FakeUpstream, ending: str
) -> None:
    # 24h shrunk to about 12 s for the expiring case: long enough for the first 100 requests to finish
    env = {"BATCHGATE_WINDOW_SCALE": "0.00014"} if ending == "expire" else {}
    server = start(server_factory, backend, fake_upstream, **env)
    client = server.client()
    ids = [f"req-{i:04d}" for i in range(REQUESTS)]
    # After 100 requests, 8 that never answer fill every upstream slot: the batch stalls mid-way.
    lines = [chat_line(cid, x_fake={"hang": True, "key": cid}) if 100 <= i < 108 else chat_line(cid)
             for i, cid in enumerate(ids)]
    file_id, batch_id = submit(client, lines)
    wait_until(client, batch_id, completed_at_least(100), timeout=60)
    backend.remove_blob(file_id)

    if ending == "cancel":
        assert client.batches.cancel(batch_id).status in {"cancelling", "cancelled"}
    done = wait_for_batch(client, batch_id, timeout=60)
    assert done.status == ("cancelled" if ending == "cancel" else "expired"), done
    known, unknown = accounted(client, done, ids)
    assert {f"req-{i:04d}" for i in range(100)} <= {cid for cid, e in known.items() if e["error"] is None}
    stopped = "batch_cancelled" if ending == "cancel" else "batch_expired"
    assert {e["error"]["code"] for e in unknown} <= {stopped, "input_file_unavailable"} and unknown
    assert "Traceback" not in server.log_tail(50_000_000)
    assert len(log_lines_about(server, file_id, "FileNotFoundError")) <= FEW_LINES


def test_downloading_a_file_whose_bytes_are_lost_is_a_clear_404(
    backend: Backend, server_factory: Any, fake_upstream: FakeUpstream
) -> None:
    server = start(server_factory, backend, fake_upstream)
    client = server.client()
    f = client.files.create(file=("input.jsonl", jsonl([chat_line("a")])), purpose="batch")
    backend.remove_blob(f.id)
    assert client.files.retrieve(f.id).id == f.id  # the row is there; only the bytes are gone
    with pytest.raises(openai.NotFoundError) as info:  # not a 200 whose body breaks off, not a 500
        client.files.content(f.id)
    assert info.value.body == {"message": f"The contents of file {f.id} are missing from storage.",
                               "type": "invalid_request_error", "param": None, "code": "file_unavailable"}
    assert "Traceback" not in server.log_tail(1_000_000)
