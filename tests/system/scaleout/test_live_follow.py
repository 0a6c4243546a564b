"""Following a batch's results across processes: `batchgate batches tail` and the SDK's `client.get` against a real
server, on SQLite (`serve` with its worker) and on PostgreSQL + S3 (an API process without a worker, and a worker
process). Every custom_id reaches the follower exactly once, as in the final files; the tail command prints the
same lines and ends when the batch does."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, FakeUpstream, base_env
from helpers import chat_line, jsonl, wait_for_batch
from openai import OpenAI
from s3tools import MotoServer

from .cluster import Cluster


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log")
    server.create_bucket("batchgate")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres+s3"])
def api(request: pytest.FixtureRequest, tmp_path: Path, fake_upstream_factory: Any) -> Iterator[BatchgateServer]:
    fake: FakeUpstream = fake_upstream_factory()
    env = {"BATCHGATE_CHUNK_SIZE": "20", "BATCHGATE_UPSTREAM_CONCURRENCY": "8"}
    if request.param == "sqlite":
        server = BatchgateServer(tmp_path / "data", upstream=fake.base_url, env=env).start()
        try:
            yield server
        finally:
            server.kill()
        return
    moto: MotoServer = request.getfixturevalue("moto")
    env |= {**moto.env("batchgate", "live"), "BATCHGATE_DATABASE_URL": request.getfixturevalue("pg_url")}
    cluster = Cluster(tmp_path, fake.base_url, env, apis=1, workers=1)
    try:
        yield cluster.apis[0]
    finally:
        cluster.close()


def lines(n: int) -> bytes:
    """n chat lines of 50 ms each (about 2.5 s at 8 at a time); every seventh answers 400."""
    return jsonl([chat_line(f"t{i}", x_fake={"status": 400} if i % 7 == 0 else {"latency": 0.05}) for i in range(n)])


def files(client: OpenAI, batch_id: str) -> dict[str, dict[str, Any]]:
    b = wait_for_batch(client, batch_id, timeout=120)
    out: dict[str, dict[str, Any]] = {}
    for file_id in (b.output_file_id, b.error_file_id):
        for raw in client.files.content(file_id).text.splitlines() if file_id else []:
            line = json.loads(raw)
            out[line["custom_id"]] = line
    return out


def test_tail_follows_a_batch_to_its_end(api: BatchgateServer, tmp_path: Path) -> None:
    client = api.client()
    upload = client.files.create(file=("in.jsonl", lines(400)), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    env = {**base_env(), "BATCHGATE_BASE_URL": api.base_url, "BATCHGATE_API_KEY": "test"}
    tail = subprocess.Popen([sys.executable, "-m", "batchgate", "batches", "tail", batch.id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # meanwhile, a follower through the SDK that notes what the batch looked like when each line reached it
    followed: list[dict[str, Any]] = []
    running_when_seen = 0
    cursor = "0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page: dict[str, Any] = client.get(f"/batches/{batch.id}/results", cast_to=dict,
                                          options={"params": {"after": cursor, "wait": 10}})
        followed += page["data"]
        if page["batch_status"] == "in_progress":
            running_when_seen += len(page["data"])
        cursor = page["cursor"]
        if page["done"]:
            break
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    final = files(client, batch.id)
    assert len(final) == 400
    by_id = {x["custom_id"]: x for x in followed}
    assert len(followed) == len(by_id) == 400 and by_id == final
    assert running_when_seen > 0  # lines came while it ran
    tailed = [json.loads(x) for x in out.splitlines()]
    assert len(tailed) == 400 and {x["custom_id"]: x for x in tailed} == final
    assert f"batch {batch.id} completed" in err
    # --errors prints only the error file's lines, and a finished batch's tail ends at once
    only = subprocess.run([sys.executable, "-m", "batchgate", "batches", "tail", batch.id, "--errors"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert sorted(json.loads(x)["custom_id"] for x in only.stdout.splitlines()) == sorted(
        k for k, v in final.items() if v["response"]["status_code"] != 200)
