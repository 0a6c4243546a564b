"""Bounded memory: upload, validate and execute a 200 MB / 50,000-line batch (lines padded to ~4 KB) against an
instant upstream (bench/simulator.py, huge slots, no service time) and report the server's RSS.

Reads /proc/<pid>/status of the `batchgate serve` process: VmRSS idle (after start), VmRSS sampled every 0.1 s
through upload, validation, execution and finalization, and VmHWM (peak) at the end. The upload is streamed
from a generator over http.client, so the client never holds the file either.

Run: .venv/bin/python bench/memory.py [--lines 50000] [--line-bytes 4190] [--limit-mb 300]
Prints one JSON object; exits 1 if the peak passes --limit-mb."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

from common import simulator  # noqa: E402
from harness import BatchgateServer  # noqa: E402

BOUNDARY = "memorybench"


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_rss_kb = 0
        self.phase = "idle"
        self.by_phase: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            try:
                rss = status_kb(self.pid, "VmRSS")
            except (OSError, KeyError):
                return
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.by_phase[self.phase] = max(self.by_phase.get(self.phase, 0), rss)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def request_line(i: int, line_bytes: int) -> bytes:
    head = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "sim", "max_tokens": 1, "messages": [{"role": "user", "content": ""}]}}
    empty = json.dumps(head, separators=(",", ":")).encode()
    pad = line_bytes - len(empty) - 1
    head["body"]["messages"][0]["content"] = f"{i} " + "x" * (pad - len(str(i)) - 1)
    out = json.dumps(head, separators=(",", ":")).encode() + b"\n"
    assert len(out) == line_bytes, (len(out), line_bytes)
    return out


def upload(port: int, lines: int, line_bytes: int) -> dict[str, Any]:
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--{BOUNDARY}\r\n'
            'Content-Disposition: form-data; name="file"; filename="memory.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        block: list[bytes] = []
        for i in range(lines):
            block.append(request_line(i, line_bytes))
            if len(block) == 256:
                yield b"".join(block)
                block = []
        if block:
            yield b"".join(block)
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/v1/files", body=body(), headers={
            "Authorization": "Bearer bench", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(head) + lines * line_bytes + len(tail))})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    assert response.status == 200, payload[:300]
    return json.loads(payload)  # type: ignore[no-any-return]


def api(port: int, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    assert response.status == 200, payload[:300]
    return json.loads(payload)


def drain(port: int, file_id: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    total = 0
    try:
        conn.request("GET", f"/v1/files/{file_id}/content", headers={"Authorization": "Bearer bench"})
        response = conn.getresponse()
        while chunk := response.read(1 << 20):
            total += len(chunk)
    finally:
        conn.close()
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=50_000)
    p.add_argument("--line-bytes", type=int, default=4190, help="bytes per line, newline included")
    p.add_argument("--limit-mb", type=float, default=300.0)
    a = p.parse_args()
    with simulator("--slots", "100000", "--base", "0", "--tokens", "1") as sim, \
            tempfile.TemporaryDirectory(prefix="bg-memory-") as tmp:
        server = BatchgateServer(Path(tmp) / "data", upstream=sim + "/v1",
                                 env={"BATCHGATE_LOG_LEVEL": "warning", "BATCHGATE_POLL_INTERVAL": "0.2"})
        server.start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            time.sleep(2.0)
            idle_kb = status_kb(pid, "VmRSS")
            sampler = Sampler(pid)
            sampler.start()
            t0 = time.monotonic()
            sampler.phase = "upload"
            f = upload(server.port, a.lines, a.line_bytes)
            t_upload = time.monotonic() - t0
            sampler.phase = "validate+execute+finalize"
            batch = api(server.port, "POST", "/v1/batches", {"input_file_id": f["id"], "endpoint":
                                                             "/v1/chat/completions", "completion_window": "24h"})
            t1 = time.monotonic()
            while batch["status"] not in ("completed", "failed", "cancelled", "expired"):
                time.sleep(0.25)
                batch = api(server.port, "GET", f"/v1/batches/{batch['id']}")
            t_batch = time.monotonic() - t1
            sampler.phase = "download output"
            out_bytes = drain(server.port, batch["output_file_id"]) if batch["output_file_id"] else 0
            sampler.phase = "after"
            time.sleep(1.0)
            sampler.stop()
            hwm_kb = status_kb(pid, "VmHWM")
            after_kb = status_kb(pid, "VmRSS")
        finally:
            server.stop()
    result = {
        "lines": a.lines, "file_bytes": f["bytes"], "status": batch["status"],
        "request_counts": batch["request_counts"], "errors": batch["errors"],
        "upload_seconds": round(t_upload, 1), "batch_seconds": round(t_batch, 1), "output_bytes": out_bytes,
        "idle_rss_mb": round(idle_kb / 1024, 1), "peak_rss_mb_vmhwm": round(hwm_kb / 1024, 1),
        "peak_rss_mb_by_phase": {k: round(v / 1024, 1) for k, v in sampler.by_phase.items()},
        "rss_after_mb": round(after_kb / 1024, 1), "limit_mb": a.limit_mb,
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if hwm_kb / 1024 <= a.limit_mb and batch["status"] == "completed" else 1)


if __name__ == "__main__":
    main()
