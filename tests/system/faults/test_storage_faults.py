"""Storage faults: the file store fills up, or turns read-only, while a file is uploaded or while a batch's
output is written. The client gets a clear error (507, or a failed batch with `storage_error`), no file is ever
half-visible, and the server keeps serving.

The file store (`<data dir>/files`) is a 20 MiB tmpfs mounted for the test (SQLite stays on the normal disk),
so "full" and "read-only" are real ENOSPC / EROFS errors. Needs root (mount); skipped otherwise."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer
from helpers import assert_envelope, chat_line, file_lines, jsonl, multipart, raw, wait_for_batch, wait_until

MB = 1024 * 1024
TMPFS_SIZE = "20m"


def mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)],
                            capture_output=True, check=False)
    return result.returncode == 0


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True, capture_output=True)


class Disk:
    """The tmpfs under the file store: fill it up, free it, make it read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "zz-filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (MB, 4096):  # big blocks, then whatever is left of the last pages
                block = b"\0" * size
                try:
                    while True:
                        os.write(fd, block)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def stray(self) -> list[str]:
        """Files in the store that are neither a registered id's bytes nor the filler: half-written leftovers."""
        tmp = [p.name for p in (self.root / ".tmp").iterdir()] if (self.root / ".tmp").exists() else []
        return tmp


@pytest.fixture
def storage(server_factory: Any, tmp_path: Path) -> Iterator[tuple[BatchgateServer, Disk]]:
    data_dir = tmp_path / "data"
    blob_dir = data_dir / "files"
    if os.geteuid() != 0 or not mount_tmpfs(blob_dir):
        pytest.skip("needs root to mount a tmpfs")
    server = server_factory(data_dir=data_dir, start=False, env={
        "BATCHGATE_LEASE_SECONDS": "1", "BATCHGATE_HEARTBEAT_SECONDS": "0.3"})
    try:
        server.start()
        yield server, Disk(blob_dir)
        server.stop()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(blob_dir)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(blob_dir)], capture_output=True, check=False)


def upload_stream(server: BatchgateServer, size: int) -> tuple[int, bytes]:
    """POST /v1/files with `size` bytes of JSONL streamed from a generator; the server may answer early."""
    boundary = "stfaults"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--{boundary}\r\n'
            f'Content-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n').encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    one = json.dumps(chat_line("x")).encode() + b"\n"
    block = one * (MB // len(one))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", "/v1/files")
        conn.putheader("Authorization", "Bearer test")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        try:
            conn.send(head)
            sent = 0
            while sent < size:
                piece = block[: size - sent]
                conn.send(piece)
                sent += len(piece)
            conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (507) and stopped reading: read that answer
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def listed_files(server: BatchgateServer) -> list[dict[str, Any]]:
    response = raw(server.base_url, "GET", "/files?limit=10000")
    assert response.status == 200
    return response.json()["data"]  # type: ignore[no-any-return]


def still_serving(server: BatchgateServer) -> None:
    assert raw(server.url, "GET", "/health").status == 200
    assert raw(server.base_url, "GET", "/batches").status == 200
    assert raw(server.base_url, "GET", "/models").status == 200


def test_upload_onto_a_full_disk_is_507_and_leaves_nothing(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    before = listed_files(server)
    status, body = upload_stream(server, 30 * MB)  # more than the 20 MiB the store has
    assert status == 507, body[:300]
    error = json.loads(body)["error"]
    assert error["code"] == "insufficient_storage" and error["type"] == "server_error"
    assert listed_files(server) == before
    assert disk.stray() == []
    still_serving(server)
    # The space was given back: a normal upload works again.
    small, ctype = multipart([("purpose", "batch"), ("file", ("ok.jsonl", jsonl([chat_line("a")])))])
    assert raw(server.base_url, "POST", "/files", small, {"Content-Type": ctype}).status == 200


def test_upload_onto_a_read_only_store_is_507(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    remount(disk.root, "ro")
    try:
        body, ctype = multipart([("purpose", "batch"), ("file", ("a.jsonl", jsonl([chat_line("a")])))])
        response = raw(server.base_url, "POST", "/files", body, {"Content-Type": ctype})
        assert_envelope(response, 507, code="insufficient_storage")
        assert b"Traceback" not in response.body
        assert listed_files(server) == []
        still_serving(server)
    finally:
        remount(disk.root, "rw")


def test_upload_part_onto_a_full_disk_is_507(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    client = server.client()
    upload = client.uploads.create(filename="a.jsonl", purpose="batch", bytes=3, mime_type="application/jsonl")
    disk.fill()
    body, ctype = multipart([("data", ("blob", b"x" * (2 * MB)))])
    response = raw(server.base_url, "POST", f"/uploads/{upload.id}/parts", body, {"Content-Type": ctype})
    assert_envelope(response, 507, code="insufficient_storage")
    disk.free()
    assert disk.stray() == []
    still_serving(server)


def submit(server: BatchgateServer, n: int, size: int) -> str:
    client = server.client()
    lines = [chat_line(f"r{i}", f"r{i} " + "y" * size) for i in range(n)]
    f = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id


def test_output_cannot_be_written_batch_fails_with_storage_error(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    batch_id = submit(server, 50, 20_000)  # ~1 MB in, ~2 MB of output
    disk.fill()  # execution writes only to the database; finalizing needs the file store
    client = server.client()
    batch = wait_for_batch(client, batch_id, timeout=60)
    assert batch.status == "failed", batch
    assert batch.errors is not None
    assert [e.code for e in batch.errors.data] == ["storage_error"]
    assert batch.output_file_id is None and batch.error_file_id is None
    assert [f for f in listed_files(server) if f["purpose"] == "batch_output"] == []
    assert disk.stray() == []
    still_serving(server)
    assert "failing the batch" in server.log_tail(1_000_000)


def test_output_write_recovers_when_space_returns(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    batch_id = submit(server, 50, 20_000)
    disk.fill()
    client = server.client()
    deadline = time.monotonic() + 30
    while "finalize task for batch" not in server.log_tail(1_000_000) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first attempt to write the output failed
    disk.free()
    batch = wait_for_batch(client, batch_id, timeout=60)
    assert batch.status == "completed", batch
    outputs = file_lines(client, batch.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == sorted(f"r{i}" for i in range(50))
    assert disk.stray() == []


def test_other_batches_keep_running_while_one_cannot_finalize(storage: tuple[BatchgateServer, Disk]) -> None:
    server, disk = storage
    client = server.client()
    small = client.files.create(file=("s.jsonl", jsonl([chat_line("s1"), chat_line("s2")])), purpose="batch")
    disk.fill()
    b = client.batches.create(input_file_id=small.id, endpoint="/v1/chat/completions", completion_window="24h")
    b = wait_until(client, b.id, lambda x: x.status in {"failed", "completed"}, timeout=60)
    assert b.status == "failed" and b.errors is not None and b.errors.data[0].code == "storage_error"
    still_serving(server)
