"""Ingest: how fast the server validates a 200 MB / 50,000-line batch file, against a bare orjson parse of
the same lines in this process (same run, same machine), and the server's peak RSS above its idle RSS.

Run: .venv/bin/python bench/ingest.py [--lines 50000] [--line-bytes 4096]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from common import bare_parse, free_port, wait_http
from openai import OpenAI


def make_file(path: Path, lines: int, line_bytes: int) -> int:
    with path.open("wb") as fh:
        for i in range(lines):
            head = orjson.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "sim", "max_tokens": 8,
                                          "messages": [{"role": "user", "content": ""}]}})
            pad = max(0, line_bytes - len(head) - 1)
            text = ("lorem ipsum dolor sit amet " * (pad // 27 + 1))[:pad]
            fh.write(head.replace(b'"content":""', b'"content":"' + text.encode() + b'"', 1) + b"\n")
    return path.stat().st_size


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=50_000)
    ap.add_argument("--line-bytes", type=int, default=4096)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bg-ingest-") as tmp:
        src = Path(tmp) / "input.jsonl"
        size = make_file(src, args.lines, args.line_bytes)
        bare_parse(src)  # warm the page cache
        bare_s = min(bare_parse(src) for _ in range(3))

        port = free_port()
        # An upstream nobody listens on: the batch is cancelled right after validation anyway.
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", str(Path(tmp) / "data"),
             "--upstream", "http://127.0.0.1:9/v1"],
            env={**os.environ, "BATCHGATE_LOG_LEVEL": "warning", "BATCHGATE_POLL_INTERVAL": "0.02"},
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            time.sleep(1.0)
            idle = rss_kib(proc.pid, "VmRSS")
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=600)
            t0 = time.perf_counter()
            with src.open("rb") as fh:
                f = client.files.create(file=("input.jsonl", fh), purpose="batch")
            upload_s = time.perf_counter() - t0
            runs = []
            for _ in range(3):  # best of 3, like the bare parse
                t0 = time.perf_counter()
                b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                          completion_window="24h")
                while b.status == "validating":
                    time.sleep(0.01)  # the poll's resolution is part of the measurement: keep it fine
                    b = client.batches.retrieve(b.id)
                runs.append(time.perf_counter() - t0)
                client.batches.cancel(b.id)
                while client.batches.retrieve(b.id).status != "cancelled":  # the next run starts on a quiet server
                    time.sleep(0.1)
            validate_s = min(runs)
            peak = rss_kib(proc.pid, "VmHWM")
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)
    mb = size / 1e6
    print(f"file: {mb:.0f} MB, {args.lines} lines; batch status after validation: {b.status}")
    print(f"bare orjson parse (best of 3): {bare_s:.2f} s = {mb / bare_s:.0f} MB/s")
    print(f"server validation (create -> in_progress, best of 3): {validate_s:.2f} s = {mb / validate_s:.0f} MB/s"
          f" (runs: {', '.join(f'{r:.2f}' for r in runs)})")
    print(f"ratio validation/bare: {bare_s / validate_s:.2f}")
    print(f"upload (SDK, multipart, streamed to disk): {upload_s:.2f} s = {mb / upload_s:.0f} MB/s")
    print(f"server RSS: idle {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
          f"peak above idle {(peak - idle) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
