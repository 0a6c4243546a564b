"""`batchgate batches list|get|create|submit|cancel|download` and `batchgate files list|upload|download|delete`
against a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer, base_env, create_key, run_cli
from helpers import chat_line, jsonl, unique, wait_for_batch, wait_until


@pytest.fixture(scope="module")
def server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory()


def cli_env(server: BatchgateServer, **env: str) -> dict[str, str]:
    return {**base_env(), "BATCHGATE_BASE_URL": server.base_url, "COLUMNS": "200", **env}


def cli_command() -> list[str]:
    return [sys.executable, "-m", "batchgate"]


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


def test_submit_waits_with_progress_lines_and_downloads(server: BatchgateServer, tmp_path: Path) -> None:
    ids = [unique() for _ in range(5)]
    bad = unique()
    src = tmp_path / "requests.jsonl"
    src.write_bytes(jsonl([*(chat_line(i, x_fake={"latency": 0.3}) for i in ids),
                           chat_line(bad, x_fake={"status": 400, "body": {}})]))
    out_dir = tmp_path / "results"
    done = cli(server, "batches", "submit", str(src), "--download", str(out_dir), "--poll-interval", "0.1",
               "--metadata", "run=nightly", "--metadata", "owner=ops")
    batch_id, *written = done.stdout.split()
    assert batch_id.startswith("batch_")
    assert written == [str(out_dir / f"{batch_id}-output.jsonl"), str(out_dir / f"{batch_id}-errors.jsonl")]
    output = [json.loads(ln) for ln in Path(written[0]).read_text().splitlines()]
    assert sorted(r["custom_id"] for r in output) == sorted(ids)
    assert [json.loads(ln)["custom_id"] for ln in Path(written[1]).read_text().splitlines()] == [bad]
    assert not list(out_dir.glob("*.part"))
    # stderr is a pipe here (as under nohup or docker logs): plain lines, one per status at least, no bar
    progress = done.stderr.splitlines()
    assert progress[-1] == f"{batch_id} completed: 6/6 done, 1 failed", done.stderr
    assert f"{batch_id} validating" in progress[0] and "\r" not in done.stderr

    got = server.client().batches.retrieve(batch_id)
    assert got.endpoint == "/v1/chat/completions"  # from the first line's url
    assert got.metadata == {"run": "nightly", "owner": "ops"}
    assert server.client().files.retrieve(got.input_file_id).filename == "requests.jsonl"


def test_submit_without_wait_and_a_batch_that_fails(server: BatchgateServer, tmp_path: Path) -> None:
    src = tmp_path / "chat.jsonl"
    src.write_bytes(jsonl([chat_line(unique())]))
    made = json.loads(cli(server, "batches", "submit", str(src), "--json").stdout)
    assert made["status"] == "validating" and made["completion_window"] == "24h"
    wait_for_batch(server.client(), made["id"])

    # every line's url differs from the batch endpoint: the batch fails, and so does the command, in one line
    failed = cli(server, "batches", "submit", str(src), "--endpoint", "/v1/embeddings", "--wait",
                 "--poll-interval", "0.1", ok=False)
    batch_id = failed.stdout.strip()
    assert failed.stderr.splitlines()[-1].startswith(f"Error: batch {batch_id} failed: "), failed.stderr
    assert "Traceback" not in failed.stderr

    src.write_text("not json\n")
    usage = cli(server, "batches", "submit", str(src), ok=False)
    assert "give --endpoint" in usage.stderr and "Traceback" not in usage.stderr


def test_create_from_an_uploaded_file(server: BatchgateServer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([chat_line(unique())]))
    file_id = cli(server, "files", "upload", str(src)).stdout.strip()
    batch_id = cli(server, "batches", "create", file_id, "--endpoint", "/v1/chat/completions",
                   "--completion-window", "2h", "--metadata", "k=v").stdout.strip()
    b = wait_for_batch(server.client(), batch_id)
    assert (b.status, b.input_file_id, b.completion_window, b.metadata) == ("completed", file_id, "2h", {"k": "v"})

    assert "--endpoint" in cli(server, "batches", "create", file_id, ok=False).stderr
    bad = cli(server, "batches", "create", file_id, "--endpoint", "/v1/chat/completions", "--metadata", "novalue",
              ok=False)
    assert "KEY=VALUE" in bad.stderr
    refused = cli(server, "batches", "create", file_id, "--endpoint", "/v1/nope", ok=False)
    assert refused.stderr.startswith("Error: 400: ") and "'/v1/nope'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_files_download_and_delete(server: BatchgateServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = jsonl([chat_line(unique()) for _ in range(200)])
    src = tmp_path / "upload-me.jsonl"
    src.write_bytes(body)
    file_id = cli(server, "files", "upload", str(src)).stdout.strip()

    to = tmp_path / "copy.jsonl"
    assert cli(server, "files", "download", file_id, "-o", str(to)).stdout.strip() == str(to)
    assert to.read_bytes() == body
    into = tmp_path / "dir"
    into.mkdir()
    got = json.loads(cli(server, "files", "download", file_id, "-o", str(into), "--json").stdout)
    assert got == {"id": file_id, "path": str(into / "upload-me.jsonl"), "bytes": len(body)}
    assert (into / "upload-me.jsonl").read_bytes() == body

    raw_out = subprocess.run([*cli_command(), "files", "download", file_id, "-o", "-"], capture_output=True,
                             env=cli_env(server), timeout=60, check=False)
    assert raw_out.returncode == 0 and raw_out.stdout == body  # bytes as they are, nothing else on stdout

    assert cli(server, "files", "delete", file_id).stdout.strip() == f"{file_id}: deleted"
    with pytest.raises(openai.NotFoundError):
        server.client().files.retrieve(file_id)
    again = cli(server, "files", "delete", file_id, ok=False)
    assert again.stderr.startswith("Error: 404") and "Traceback" not in again.stderr
    gone = cli(server, "files", "download", file_id, "-o", str(tmp_path / "gone.jsonl"), ok=False)
    assert "404" in gone.stderr and not (tmp_path / "gone.jsonl").exists()
    assert not (tmp_path / "gone.jsonl.part").exists()
    nowhere = cli(server, "files", "download", file_id, "-o", str(tmp_path / "no" / "such" / "dir.jsonl"), ok=False)
    assert "Traceback" not in nowhere.stderr


def test_batches_list_fits_80_columns(server: BatchgateServer) -> None:
    client = server.client()
    f = client.files.create(file=("w.jsonl", jsonl([chat_line(unique())])), purpose="batch")
    made = [client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  metadata={"n": str(i)}) for i in range(2)]
    for b in made:
        wait_for_batch(client, b.id)
    wide = cli(server, "batches", "list").stdout.splitlines()
    assert wide[0].split() == ["ID", "STATUS", "ENDPOINT", "MODEL", "COUNTS", "CREATED"]

    narrow = cli(server, "batches", "list", COLUMNS="80").stdout.splitlines()
    assert all(len(line) <= 80 for line in narrow), "\n".join(narrow)
    assert narrow[0].split()[:3] == ["ID", "STATUS", "COUNTS"]
    rows = {line.split()[0]: line.split() for line in narrow[1:]}
    for b in made:  # one line per batch, the id whole, then its status and counts
        assert rows[b.id][1:3] == ["completed", "1/0/1"]


def test_ctrl_c_stops_the_waiting_not_the_batch(server: BatchgateServer, tmp_path: Path) -> None:
    src = tmp_path / "slow.jsonl"
    src.write_bytes(jsonl([chat_line(unique(), x_fake={"latency": 30})]))
    proc = subprocess.Popen([*cli_command(), "batches", "submit", str(src), "--wait", "--poll-interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(server), text=True)
    assert proc.stdout is not None and proc.stderr is not None
    batch_id = proc.stdout.readline().strip()
    client = server.client()
    wait_until(client, batch_id, lambda b: b.status == "in_progress")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == "", err
    assert err.splitlines()[-1] == (f"stopped waiting: {batch_id} goes on on the server "
                                    f"(`batchgate batches get {batch_id}`)")
    assert client.batches.retrieve(batch_id).status == "in_progress"
    client.batches.cancel(batch_id)
