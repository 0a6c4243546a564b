"""A chunk that cannot run (its input unreadable for a reason other than missing bytes, here a directory where
the file was) is retried with backoff, never in a hot loop, and logged once: it recovers when the fault goes,
and its fifth failure fails its unrun requests (`chunk_failed`) so that the batch can still complete.

(Before, the worker released a failing chunk and claimed it again at once, logging a traceback each time.)
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from harness import BatchgateServer, FakeUpstream
from helpers import assert_exactly_once, chat_line, jsonl, wait_for_batch, wait_until
from openai import OpenAI

from batchgate.worker.failures import MAX_CHUNK_FAILURES

REQUESTS = 400
ENV = {"BATCHGATE_CHUNK_SIZE": "20", "BATCHGATE_UPSTREAM_CONCURRENCY": "8", "BATCHGATE_LOG_LEVEL": "info"}


def start(server_factory: Any, tmp_path: Path, fake: FakeUpstream) -> tuple[BatchgateServer, OpenAI]:
    fake.control(latency=0.1)  # 8 at a time: about 5 s a batch, caught mid-way with most chunks unread
    server: BatchgateServer = server_factory(data_dir=tmp_path / "data", env=ENV)
    return server, server.client()


def submit_and_break(server: BatchgateServer, client: OpenAI, ids: list[str]) -> tuple[str, str, Path, Path]:
    """Run a batch; once 40 requests are done, put a directory where its input's bytes are."""
    f = client.files.create(file=("input.jsonl", jsonl([chat_line(cid) for cid in ids])), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_until(client, b.id, lambda x: x.request_counts is not None and x.request_counts.completed >= 40,
               timeout=60)
    blob = server.data_dir / "files" / f.id
    aside = blob.with_name(f.id + ".aside")
    broken = blob.with_name(f.id + ".broken")
    broken.mkdir()
    os.link(blob, aside)  # the bytes stay reachable under another name
    link = blob.with_name(f.id + ".link")
    link.symlink_to(broken)
    # In one step (a moment with nothing there would read as "missing", a loss for good): reading it fails, but not
    # as "missing" (a 503 ServiceUnavailable), so the chunk is retried.
    os.replace(link, blob)
    return f.id, b.id, blob, aside


def most_failures(server: BatchgateServer, batch_id: str) -> int:
    db = sqlite3.connect(server.data_dir / "batchgate.sqlite3")
    try:
        return int(db.execute("SELECT MAX(failures) FROM chunks WHERE batch_id = ?", (batch_id,)).fetchone()[0])
    finally:
        db.close()


def failure_lines(server: BatchgateServer, batch_id: str) -> list[str]:
    return [line for line in server.log_tail(50_000_000).splitlines()
            if batch_id in line and re.search(r"chunk \d+ failed", line)]


def test_a_failing_chunk_backs_off_and_recovers(
    server_factory: Any, tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    server, client = start(server_factory, tmp_path, fake_upstream)
    ids = [f"req-{i:04d}" for i in range(REQUESTS)]
    _, batch_id, blob, aside = submit_and_break(server, client, ids)
    time.sleep(3.5)  # retries after 1 and 2 s: three tries at most so far, for every chunk
    assert len(failure_lines(server, batch_id)) == 1, failure_lines(server, batch_id)[:3]
    assert "Traceback" not in server.log_tail(50_000_000)
    assert 1 <= most_failures(server, batch_id) <= 3
    assert client.batches.retrieve(batch_id).status == "in_progress"

    os.replace(aside, blob)  # the fault goes, in one step: the next retry of each chunk runs it
    done = wait_for_batch(client, batch_id, timeout=60)
    assert done.status == "completed", done
    outputs, errors = assert_exactly_once(client, done, ids)
    assert len(outputs) == REQUESTS and not errors


def test_a_chunk_that_keeps_failing_fails_its_requests_once(
    server_factory: Any, tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    server, client = start(server_factory, tmp_path, fake_upstream)
    ids = [f"req-{i:04d}" for i in range(REQUESTS)]
    file_id, batch_id, _, _ = submit_and_break(server, client, ids)
    done = wait_for_batch(client, batch_id, timeout=90)  # 1 + 2 + 4 + 8 s of backoff, then the fifth try
    assert done.status == "completed", done
    counts = done.request_counts
    assert counts is not None and counts.total == REQUESTS and counts.completed >= 40
    outputs = [line for line in client.files.content(done.output_file_id or "").text.splitlines() if line]
    errors = [line for line in client.files.content(done.error_file_id or "").text.splitlines() if line]
    assert len(outputs) == counts.completed and len(errors) == counts.failed == REQUESTS - counts.completed
    for line in errors:  # the input cannot be read, so neither can the custom_ids of these requests
        assert '"custom_id":null' in line and '"code":"chunk_failed"' in line and file_id in line, line
    assert most_failures(server, batch_id) == MAX_CHUNK_FAILURES - 1  # retried 4 times, failed on the 5th try
    gave_up = [line for line in failure_lines(server, batch_id) if "failing the requests" in line]
    assert len(gave_up) == 1 and len(failure_lines(server, batch_id)) == 2
    assert "Traceback" not in server.log_tail(50_000_000)
