"""Shared helpers for the benchmarks: start processes, submit a batch through the official SDK, time it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def http_json(url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


@contextmanager
def process(args: list[str], ready_url: str, env: dict[str, str] | None = None,
            log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    out: Any = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=out if log else None)
    try:
        wait_http(ready_url)
        yield p
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if log:
            out.close()


@contextmanager
def simulator(*args: str) -> Iterator[str]:
    port = free_port()
    with process([sys.executable, str(ROOT / "bench" / "simulator.py"), "--port", str(port), *args],
                 f"http://127.0.0.1:{port}/_stats"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def batchgate(upstream: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bg-bench-") as tmp:
        with process([sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", tmp,
                      "--upstream", upstream + "/v1"], f"http://127.0.0.1:{port}/health",
                     env={"BATCHGATE_LOG_LEVEL": "warning", **(env or {})}):
            yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def split_batchgate(upstream: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`serve --no-worker` for the API and one `batchgate worker` process, on one data directory."""
    port = free_port()
    env = {"BATCHGATE_LOG_LEVEL": "warning", **(extra_env or {})}
    with tempfile.TemporaryDirectory(prefix="bg-split-") as tmp:
        common = ["--data-dir", tmp, "--upstream", upstream + "/v1"]
        with process([sys.executable, "-m", "batchgate", "serve", "--no-worker", "--port", str(port), *common],
                     f"http://127.0.0.1:{port}/health", env=env), \
                process([sys.executable, "-m", "batchgate", "worker", *common],
                        f"http://127.0.0.1:{port}/health", env=env):
            yield f"http://127.0.0.1:{port}/v1"


def chat_lines(n: int, prompt_of: Any = None, max_tokens: int | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        messages = prompt_of(i) if prompt_of else [{"role": "user", "content": f"request {i}"}]
        body: dict[str, Any] = {"model": "sim", "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        out.append({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
    return out


def run_batch(base_url: str, lines: list[dict[str, Any]], timeout: float = 1800,
              endpoint: str = "/v1/chat/completions",
              on_poll: Callable[[float, Any], None] | None = None) -> tuple[float, Any]:
    """Upload, create, wait for a terminal status. Returns (seconds from create to terminal, batch).
    `on_poll(seconds since create, batch)` is called at each poll while it runs."""
    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in lines)
    f = client.files.create(file=("bench.jsonl", data), purpose="batch")
    t0 = time.monotonic()
    b = client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    deadline = t0 + timeout
    while b.status not in ("completed", "failed", "cancelled", "expired"):
        if time.monotonic() > deadline:
            raise TimeoutError(b)
        time.sleep(0.05)
        b = client.batches.retrieve(b.id)
        if on_poll is not None:
            on_poll(time.monotonic() - t0, b)
    elapsed = time.monotonic() - t0
    client.close()
    return elapsed, b


def bare_parse(path: Path) -> float:
    """Read the file in 1 MiB blocks, split lines, orjson-parse each: what validation cannot beat."""
    t0 = time.perf_counter()
    with path.open("rb") as fh:
        rest = b""
        while block := fh.read(1 << 20):
            *lines, rest = (rest + block).split(b"\n")
            for line in lines:
                orjson.loads(line)
        if rest.strip():
            orjson.loads(rest)
    return time.perf_counter() - t0


async def _run_sql(url: str, sql: str) -> None:
    import asyncpg  # only the PostgreSQL benchmarks need it

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(admin: str, prefix: str = "bgbench") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server `admin` points at (dropped afterwards); its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_run_sql(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(admin)._replace(path="/" + name))
    finally:
        asyncio.run(_run_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
