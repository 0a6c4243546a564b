"""BATCHGATE_LOG_FORMAT=json: every line is a JSON object; lines logged for a request carry its x-request-id."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, create_key
from helpers import assert_envelope, chat_line, raw, run_batch, unique

from batchgate import logs


def test_json_lines_with_request_and_batch_ids(server_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = create_key(data, "team")
    server: BatchgateServer = server_factory(
        data_dir=data, env={"BATCHGATE_LOG_FORMAT": "json", "BATCHGATE_LOG_LEVEL": "debug"}
    )
    client = server.client(api_key=key)
    ids: dict[str, str] = {}
    listed = client.files.with_raw_response.list()
    ids["GET /v1/files"] = listed.headers["x-request-id"]
    missing = raw(server.base_url, "GET", "/batches/batch_nope", api_key=key)
    assert_envelope(missing, 404)
    ids["GET /v1/batches/batch_nope"] = missing.headers["x-request-id"]
    wrong = "bg-" + "W" * 43
    denied = raw(server.base_url, "GET", "/files", api_key=wrong)
    assert_envelope(denied, 401)
    ids["GET /v1/files 401"] = denied.headers["x-request-id"]
    batch = run_batch(client, [chat_line(unique()), chat_line(unique(), x_fake={"fail_times": 1, "status": 500})])
    assert batch.status == "completed"
    server.stop()

    text = server.log_path.read_text()
    records = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)  # every line, uvicorn's and the worker's included
            assert {"ts", "level", "logger", "message"} <= set(record), record
            records.append(record)
    assert key not in text and wrong not in text and "W" * 20 not in text
    assert any(r["logger"].startswith("uvicorn") for r in records)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if "request_id" in r:
            by_request.setdefault(r["request_id"], []).append(r)
    for what, rid in ids.items():
        lines = by_request.get(rid)
        assert lines, f"no log line for {what} ({rid})"
        method, path = what.split()[:2]
        assert any(ln["message"].startswith(f"{method} {path} ") for ln in lines), lines
    assert any(ln["message"].startswith("GET /v1/files 401 ") for ln in by_request[ids["GET /v1/files 401"]])
    worker = [r for r in records if r["logger"] == "batchgate.worker" and r.get("batch_id") == batch.id]
    assert any("retry" in r["message"] for r in worker), worker
    assert all("request_id" not in r for r in worker)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_credentials_are_redacted(fmt: str) -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"batchgate.test.{fmt}")
    logger.propagate = False
    logger.addHandler(logs.handler(fmt, stream))
    token = logs.request_id.set("req_1")
    try:
        logger.warning("headers: {'authorization': 'Bearer sk-secret1'} key bg-%s", "K" * 40)
    finally:
        logs.request_id.reset(token)
        logger.handlers.clear()
    out = stream.getvalue()
    assert "sk-secret1" not in out and "K" * 20 not in out and "[redacted]" in out
    if fmt == "json":
        record = json.loads(out)
        assert record["request_id"] == "req_1" and record["level"] == "warning"
        assert record["logger"] == f"batchgate.test.{fmt}"
    else:
        assert out.rstrip().endswith("[request_id=req_1]")
