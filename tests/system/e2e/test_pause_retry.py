"""Pause, resume and retry against a real server process (SQLite, and PostgreSQL), driven by `batchgate batches
pause|resume|retry|get|list` and checked with the official SDK and the fake upstream's own counts.

Not timed: "dispatch stopped" means the fake upstream's request count stays still once the requests in flight at
the pause have come back (waited for with generous slack)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, FakeUpstream, run_cli
from helpers import chat_line, jsonl, wait_for_batch, wait_until
from openai import OpenAI
from openai.types import Batch
from pgtools import pg_databases, pg_url

__all__ = ["pg_databases", "pg_url"]


@pytest.fixture(params=["sqlite", "postgres"])
def started(request: pytest.FixtureRequest, server_factory: Callable[..., BatchgateServer],
            fake_upstream_factory: Callable[[], FakeUpstream],
            tmp_path: Path) -> tuple[BatchgateServer, FakeUpstream, str]:
    fake = fake_upstream_factory()
    fake.control(latency=0.1)
    env = {"BATCHGATE_UPSTREAM_CONCURRENCY": "4", "BATCHGATE_CHUNK_SIZE": "20"}
    if request.param == "postgres":
        env["BATCHGATE_DATABASE_URL"] = request.getfixturevalue("pg_url")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = run_cli(["keys", "create", "--project", "alpha", "--data-dir", str(data_dir)], env=env)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1].strip()
    return server_factory(upstream=fake.base_url, env=env, data_dir=data_dir), fake, key


def cli(server: BatchgateServer, key: str, *args: str, ok: bool = True) -> str:
    result = run_cli(list(args), env={"BATCHGATE_BASE_URL": server.base_url, "BATCHGATE_API_KEY": key,
                                      "COLUMNS": "200"})
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result.stdout + result.stderr


def submit(client: OpenAI, n: int, tag: str, x_fake: Callable[[int], dict[str, Any] | None]) -> Batch:
    lines = [chat_line(f"{tag}-{i}", f"{tag} {i}", x_fake=x_fake(i)) for i in range(n)]
    f = client.files.create(file=(f"{tag}.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")


def done(b: Batch) -> int:
    return 0 if b.request_counts is None else b.request_counts.completed + b.request_counts.failed


def ids_in(client: OpenAI, file_id: str | None) -> list[str]:
    if file_id is None:
        return []
    return [json.loads(x)["custom_id"] for x in client.files.content(file_id).text.splitlines() if x.strip()]


def settle(fake: FakeUpstream, quiet: float = 3.0, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    last, since = fake.stats()["total"], time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the upstream kept receiving requests"
        time.sleep(0.1)
        now = fake.stats()["total"]
        if now != last:
            last, since = now, time.monotonic()
    return int(last)


def test_pause_resume_and_retry_from_the_cli(started: tuple[BatchgateServer, FakeUpstream, str]) -> None:
    server, fake, key = started
    client = server.client(key)
    # Lines 5, 15, 25, ... are refused once with a 400 (final at once); their retry succeeds.
    b = submit(client, 300, "s", lambda i: {"status": 400, "fail_times": 1} if i % 10 == 5 else None)
    wait_until(client, b.id, lambda x: x.status == "in_progress" and done(x) >= 10, timeout=60)
    assert cli(server, key, "batches", "pause", b.id).strip() == f"{b.id}: in_progress (paused)"
    sent = settle(fake)
    time.sleep(2.0)
    assert fake.stats()["total"] == sent < 300  # nothing more went out while paused
    shown = json.loads(cli(server, key, "batches", "get", b.id, "--json"))
    assert shown["status"] == "in_progress" and shown["paused"] is True and shown["paused_at"] > 0
    assert done(client.batches.retrieve(b.id)) == sent
    assert f"{b.id}" in cli(server, key, "batches", "list") and "in_progress (paused)" in cli(
        server, key, "batches", "list")
    assert cli(server, key, "batches", "resume", b.id).strip() == f"{b.id}: in_progress"
    first = wait_for_batch(client, b.id, timeout=120)
    assert first.status == "completed" and fake.stats()["total"] == 300  # each line sent once
    ok1, bad1 = ids_in(client, first.output_file_id), ids_in(client, first.error_file_id)
    assert sorted(bad1) == sorted(f"s-{i}" for i in range(300) if i % 10 == 5)

    assert "no unfinished lines" in cli(server, key, "batches", "retry", b.id, "--unfinished", ok=False)
    out = cli(server, key, "batches", "retry", b.id).strip()
    retry_id = out.split(":")[0]
    assert retry_id.startswith("batch_") and retry_id != b.id and f"failed lines of {b.id}" in out
    second = wait_for_batch(client, retry_id, timeout=120)
    got = json.loads(cli(server, key, "batches", "get", retry_id, "--json"))
    assert got["retried_from"] == b.id and got["retry_only"] == "failed" and got["input_file_id"] == b.input_file_id
    assert second.status == "completed" and second.request_counts is not None
    assert second.request_counts.total == second.request_counts.completed == len(bad1)
    ok2 = ids_in(client, second.output_file_id)
    assert not ids_in(client, second.error_file_id)
    # Across the two batches every custom_id succeeded exactly once.
    assert sorted(ok1 + ok2) == sorted(f"s-{i}" for i in range(300))
