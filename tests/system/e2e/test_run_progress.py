"""What `batchgate run` shows: plain progress lines when stderr is not a terminal, a bar with failures and
retries when it is; and --max-concurrency caps what is in flight."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, base_env, run_cli
from helpers import chat_line
from runtools import BAD, batch_lines, ids, read_results, write_input

PLAIN = re.compile(r"^(\w+): (\d+)/(\d+) done, (\d+) failed, (\d+) retries, (\d+) req/s$")


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


def troubled_input(path: Path, n: int) -> Path:
    """`n` lines, one answered 500 twice before it succeeds (2 retries), one answered 400 (failed)."""
    lines = batch_lines(n)
    lines[1] = chat_line("flaky", x_fake={"fail_times": 2, "status": 500, "key": "flaky"})
    lines[2] = chat_line("bad", x_fake={"status": 400, "body": BAD, "key": "bad"})
    return write_input(path, lines)


def test_max_concurrency_caps_requests_in_flight(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    fake.control(latency=0.05)
    lines = batch_lines(40)
    src, out = write_input(tmp_path / "in.jsonl", lines), tmp_path / "out.jsonl"
    result = run_cli(["run", str(src), "-o", str(out), "--upstream", fake.base_url, "--max-concurrency", "3"])
    assert result.returncode == 0, result.stderr
    assert set(read_results(out)) == ids(lines)
    assert fake.stats()["max_in_flight"] == 3


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    fake.control(latency=0.05)
    src, out = troubled_input(tmp_path / "in.jsonl", 60), tmp_path / "out.jsonl"
    result = run_cli(["run", str(src), "-o", str(out), "--upstream", fake.base_url, "--max-concurrency", "4"],
                     env={"BATCHGATE_RUN_PROGRESS_SECONDS": "0.2"})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr  # no terminal control characters in a log
    progress = [m for m in map(PLAIN.match, result.stderr.splitlines()) if m]
    assert len([m for m in progress if m.group(1) == "in_progress"]) >= 2, result.stderr
    last = progress[-1]
    assert last.groups()[:5] == ("completed", "60", "60", "1", "2"), result.stderr
    assert "completed: 59 succeeded, 1 failed, 2 retries" in result.stderr


def run_on_terminal(args: list[str]) -> tuple[int, str]:
    """`python -m batchgate ARGS` with stderr on a pseudo-terminal of 160 columns: exit code and what it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = base_env()
    env.update(TERM="xterm-256color", COLUMNS="160")
    proc = subprocess.Popen([sys.executable, "-m", "batchgate", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    drawn = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        drawn += data
    os.close(master)
    return proc.wait(timeout=60), drawn.decode(errors="replace")


def test_bar_shows_failures_and_retries_on_a_terminal(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out = troubled_input(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    code, drawn = run_on_terminal(["run", str(src), "-o", str(out), "--upstream", fake.base_url])
    assert code == 0, drawn
    assert "20/20" in drawn and "1 failed, 2 retries" in drawn, drawn
    assert not any(PLAIN.match(line.strip()) for line in drawn.splitlines())  # the bar, not log lines
