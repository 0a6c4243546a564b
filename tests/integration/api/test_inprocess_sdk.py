"""The whole API in one process: the app factory's lifespan (store, blobs, the worker thread) under Starlette's
TestClient, driven by the official `openai` SDK over it. The local `echo` model answers, so nothing is started."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.settings import Settings

TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture
def sdk(tmp_path: Path) -> Iterator[OpenAI]:
    settings = Settings(data_dir=tmp_path, poll_interval=0.05)
    # The worker thread shortens the interpreter's thread switch interval for the whole process; left so, every
    # threaded test after this one in the session runs several times slower.
    switch_interval = sys.getswitchinterval()
    # Entering the TestClient runs the lifespan: the worker thread starts, and stops when the block ends.
    try:
        with TestClient(create_app(settings)) as http:
            client = OpenAI(base_url="http://testserver/v1", api_key="test", http_client=http, max_retries=0)
            yield client
            client.close()
    finally:
        sys.setswitchinterval(switch_interval)


def test_upload_create_poll_download(sdk: OpenAI) -> None:
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "echo", "messages": [{"role": "user", "content": f"say {i}"}]}} for i in range(5)]
    upload = sdk.files.create(file=("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                              purpose="batch")
    batch = sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 60
    while batch.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (5, 5, 0)
    assert batch.output_file_id is not None and batch.error_file_id is None
    results = [json.loads(x) for x in sdk.files.content(batch.output_file_id).text.splitlines()]
    by_id = {r["custom_id"]: r for r in results}
    assert sorted(by_id) == [f"r{i}" for i in range(5)]
    for i in range(5):
        response = by_id[f"r{i}"]["response"]
        assert response["status_code"] == 200
        assert response["body"]["choices"][0]["message"]["content"] == f"say {i}"
