"""`batchgate batches list|get|cancel|download` and `batchgate files list|upload` against a real server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, create_key, run_cli
from helpers import chat_line, jsonl, unique, wait_for_batch, wait_until


@pytest.fixture(scope="module")
def server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory()


def cli(server: BatchgateServer, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(list(args), env={"BATCHGATE_BASE_URL": server.base_url, "COLUMNS": "200", **env})
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result


def test_upload_run_list_get_download(server: BatchgateServer, tmp_path: Path) -> None:
    ids = [unique() for _ in range(3)]
    bad = unique()
    src = tmp_path / "requests.jsonl"
    src.write_bytes(jsonl([*(chat_line(i) for i in ids), chat_line(bad, x_fake={"status": 400, "body": {}})]))

    file_id = cli(server, "files", "upload", str(src)).stdout.strip()
    assert file_id.startswith("file-")
    assert file_id in cli(server, "files", "list").stdout
    listed = json.loads(cli(server, "files", "list", "--purpose", "batch", "--json").stdout)
    assert any(f["id"] == file_id and f["filename"] == "requests.jsonl" for f in listed)

    client = server.client()
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_for_batch(client, batch.id)

    table = cli(server, "batches", "list").stdout
    assert batch.id in table and "completed" in table and "3/1/4" in table
    assert batch.id in [b["id"] for b in json.loads(cli(server, "batches", "list", "--json", "--all").stdout)]
    got = json.loads(cli(server, "batches", "get", batch.id, "--json").stdout)
    assert got["status"] == "completed" and got["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    assert "output_file_id" in cli(server, "batches", "get", batch.id).stdout

    out_dir = tmp_path / "results"
    written = json.loads(cli(server, "batches", "download", batch.id, "--dir", str(out_dir), "--json").stdout)
    output = [json.loads(ln) for ln in Path(written["output"]).read_text().splitlines()]
    errors = [json.loads(ln) for ln in Path(written["errors"]).read_text().splitlines()]
    assert sorted(r["custom_id"] for r in output) == sorted(ids)
    assert [r["custom_id"] for r in errors] == [bad]
    assert Path(written["output"]) == out_dir / f"{batch.id}-output.jsonl"


def test_cancel_and_errors(server: BatchgateServer, tmp_path: Path) -> None:
    client = server.client()
    f = client.files.create(file=("slow.jsonl", jsonl([chat_line(unique(), x_fake={"latency": 30})])),
                            purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_until(client, batch.id, lambda b: b.status == "in_progress")
    nothing = cli(server, "batches", "download", batch.id, "--dir", str(tmp_path), ok=False)
    assert "no output or error file yet" in nothing.stderr
    assert cli(server, "batches", "cancel", batch.id).stdout.strip() in (
        f"{batch.id}: cancelling", f"{batch.id}: cancelled")
    assert wait_for_batch(client, batch.id).status == "cancelled"

    missing = cli(server, "batches", "get", "batch_nope", ok=False)
    assert "404" in missing.stderr and "batch_nope" in missing.stderr and "Traceback" not in missing.stderr


def test_api_key_from_the_environment(module_server_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = create_key(data, "team")
    server: BatchgateServer = module_server_factory(data_dir=data)
    assert json.loads(cli(server, "files", "list", "--json", OPENAI_API_KEY=key).stdout) == []
    assert json.loads(cli(server, "batches", "list", "--json", "--api-key", key).stdout) == []
    denied = cli(server, "files", "list", ok=False, BATCHGATE_API_KEY="bg-wrong")
    assert "401" in denied.stderr
    server.stop()
