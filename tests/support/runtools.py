"""`batchgate run` as a real subprocess the tests can signal, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import FakeUpstream, base_env
from helpers import chat_line, jsonl

BAD = {"error": {"message": "nope", "type": "invalid_request_error", "param": None, "code": None}}


def batch_lines(n: int, bad_every: int = 0) -> list[dict[str, Any]]:
    """`n` chat lines `c0`..; with `bad_every`, every such line is `badN`, answered 400 by the fake."""
    return [
        chat_line(f"bad{i}", x_fake={"status": 400, "body": BAD}) if bad_every and i % bad_every == bad_every - 1
        else chat_line(f"c{i}")
        for i in range(n)
    ]


def write_input(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(jsonl(lines))
    return path


def ids(lines: list[dict[str, Any]]) -> set[str]:
    return {line["custom_id"] for line in lines}


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """custom_id -> result line; fails if one appears twice. A missing file has no results."""
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = {line["custom_id"]: line for line in lines}
    assert len(found) == len(lines), f"a custom_id was written twice in {path}"
    return found


def start_run(args: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.Popen[str]:
    """`python -m batchgate ARGS` in its own session (signals sent to it reach only it)."""
    full_env = base_env()
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgate", *args],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, start_new_session=True,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin.decode())
        proc.stdin.close()
        proc.stdin = None  # written: communicate() has nothing more to send
    return proc


def wait_sent(fake: FakeUpstream, count: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the fake has received `count` requests (fails if the run ends first)."""
    deadline = time.monotonic() + timeout
    while fake.stats()["total"] < count:
        assert proc.poll() is None, f"run ended early: {proc.returncode} {proc.communicate()}"
        assert time.monotonic() < deadline, "the run sent too little"
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        raise AssertionError(f"run did not exit in {timeout}s: {err}") from None
    return proc.returncode, out, err
