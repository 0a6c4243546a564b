"""Fault scenarios shared by tests/system/faults and the bench scripts: each takes running processes and returns
what it measured, asserting the invariants on the way."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from harness import BatchgateServer, FakeUpstream
from helpers import chat_line, file_lines, jsonl, wait_for_batch

# Knobs of the fault run (issue 4): 20% 500s, 10% 429 with Retry-After, 5% dropped connections, 1% hangs.
FAULT_KNOBS = {"error_rate": 0.2, "rate_429": 0.1, "retry_after": 1, "drop_rate": 0.05, "hang_rate": 0.01}
FAULT_SERVER_ENV = {
    "BATCHGATE_REQUEST_TIMEOUT": "1.5",
    "BATCHGATE_RETRY_BASE_SECONDS": "0.02",
    "BATCHGATE_RETRY_MAX_SECONDS": "0.5",
    "BATCHGATE_MAX_ATTEMPTS": "12",
    "BATCHGATE_UPSTREAM_CONCURRENCY": "128",
    "BATCHGATE_CHUNK_SIZE": "128",
}
PERMANENT_BODY = {"error": {"message": "permanent failure (fake)", "type": "invalid_request_error",
                            "param": "messages", "code": "bad_thing"}}


@dataclass
class FaultRun:
    requests: int
    permanent: int
    seconds: float
    retries: int
    upstream_total: int
    statuses: dict[str, int]
    dropped: int
    hung: int
    log_lines: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "permanent_errors": self.permanent, "seconds": round(self.seconds, 1),
                "batch_retries": self.retries, "upstream_requests": self.upstream_total,
                "statuses": self.statuses, "dropped": self.dropped, "hung": self.hung}


def fault_run(server: BatchgateServer, fake: FakeUpstream, n: int, permanent_every: int = 50,
              timeout: float = 600.0) -> FaultRun:
    """n requests under FAULT_KNOBS; every `permanent_every`-th answers 400. Asserts the outcome."""
    fake.control(**FAULT_KNOBS, seed=4)
    lines = []
    permanent = set()
    for i in range(n):
        if i % permanent_every == permanent_every - 1:
            permanent.add(f"r{i}")
            lines.append(chat_line(f"r{i}", x_fake={"status": 400, "body": PERMANENT_BODY}))
        else:
            lines.append(chat_line(f"r{i}"))
    client = server.client(timeout=60.0)
    f = client.files.create(file=("faults.jsonl", jsonl(lines)), purpose="batch")
    start = time.monotonic()
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    batch = wait_for_batch(client, batch.id, timeout=timeout)
    seconds = time.monotonic() - start
    assert batch.status == "completed", batch
    outputs = {o["custom_id"]: o for o in file_lines(client, batch.output_file_id)}
    errors = {e["custom_id"]: e for e in file_lines(client, batch.error_file_id)}
    # Every transient failure eventually succeeded; every permanent one is in the error file, as answered.
    assert set(errors) == permanent, sorted(set(errors) ^ permanent)[:10]
    assert len(outputs) == n - len(permanent)
    for e in errors.values():
        assert e["error"] is None and e["response"]["status_code"] == 400, e
        assert e["response"]["body"] == PERMANENT_BODY, e
    for o in outputs.values():
        assert o["response"]["status_code"] == 200
    wire = client.batches.with_raw_response.retrieve(batch.id).http_response.json()
    retries = wire["batchgate"]["retries"]
    stats = fake.stats()
    fake.control(error_rate=0.0, rate_429=0.0, retry_after=None, drop_rate=0.0, hang_rate=0.0)
    log = server.log_tail(50_000_000)
    wanted = [ln for ln in log.splitlines() if "upstream retries" in ln or "overloads" in ln]
    return FaultRun(n, len(permanent), seconds, retries, stats["total"], stats["statuses"], stats["dropped"],
                    stats["hung"], wanted)


def dead_upstream_run(server: BatchgateServer, n: int, timeout: float = 120.0) -> tuple[float, dict[str, Any]]:
    """A batch against an upstream nobody listens on waits for it, spending no attempts, until its window ends:
    then it is `expired` with every line `batch_expired`, and the log has one WARNING that dispatch paused. The
    server needs a small BATCHGATE_WINDOW_SCALE (the batch asks for 24h)."""
    client = server.client(timeout=60.0)
    f = client.files.create(file=("dead.jsonl", jsonl([chat_line(f"d{i}") for i in range(n)])), purpose="batch")
    start = time.monotonic()
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    batch = wait_for_batch(client, batch.id, timeout=timeout)
    seconds = time.monotonic() - start
    assert batch.status == "expired", batch
    assert batch.output_file_id is None
    errors = file_lines(client, batch.error_file_id)
    assert sorted(e["custom_id"] for e in errors) == sorted(f"d{i}" for i in range(n))
    codes = {e["error"]["code"] for e in errors}
    assert codes == {"batch_expired"}, codes
    wire = json.loads(client.batches.with_raw_response.retrieve(batch.id).http_response.text)
    log = server.log_tail(5_000_000)
    paused = [ln for ln in log.splitlines() if "every replica is down" in ln]
    return seconds, {"requests": n, "seconds": round(seconds, 2), "retries": wire["batchgate"]["retries"],
                     "paused_lines": paused}
