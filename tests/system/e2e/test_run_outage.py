"""`batchgate run` against an upstream that is down: it waits (saying what for, spending no attempts) and finishes
when the upstream answers, or ends with the batch's window; `--fail-fast` stops at once with exit status 4."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, base_env, free_port, run_cli
from helpers import chat_line, jsonl


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


def read(path: Path) -> dict[str, dict[str, Any]]:
    return {json.loads(ln)["custom_id"]: json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()}


def files(tmp_path: Path, n: int) -> tuple[Path, Path, Path]:
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_bytes(jsonl([chat_line(f"c{i}") for i in range(n)]))
    return src, out, err


def test_fail_fast_stops_with_4_when_the_upstream_is_down(tmp_path: Path) -> None:
    src, out, err = files(tmp_path, 40)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", dead, "--fail-fast"])
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"waiting: upstream default ({dead}) is down" in result.stderr
    assert "--fail-fast: upstream default is down" in result.stderr
    assert "40 of 40 lines did not run" in result.stderr  # none failed: refused requests spend no attempt
    assert not err.exists() or read(err) == {}


def test_run_waits_for_the_upstream_and_completes_when_it_answers(tmp_path: Path) -> None:
    src, out, err = files(tmp_path, 40)
    port = free_port()
    env = base_env()
    env["BATCHGATE_MAX_ATTEMPTS"] = "1"  # a single spent attempt would fail a line
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgate", "run", str(src), "-o", str(out), "--errors", str(err), "--upstream",
         f"http://127.0.0.1:{port}/v1"], env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    fake = None
    try:
        seen = []
        for line in proc.stderr:  # the upstream comes up only once the run says it waits for it
            seen.append(line)
            if line.startswith("waiting: upstream default"):
                break
        assert seen and seen[-1].startswith("waiting:"), seen
        fake = FakeUpstream(tmp_path / "fake.log", port=port)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, "".join(seen) + rest
        assert fake.stats()["total"] == 40  # each line sent once: refused ones never reached it
    finally:
        proc.kill()
        proc.stderr.close()
        if fake is not None:
            fake.stop()
    assert "upstream default answers again" in rest
    assert "completed: 40 succeeded, 0 failed" in rest
    assert set(read(out)) == {f"c{i}" for i in range(40)}


def test_run_against_a_dead_upstream_ends_with_its_window_as_batch_expired(tmp_path: Path) -> None:
    src, out, err = files(tmp_path, 30)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", dead],
                     env={"BATCHGATE_WINDOW_SCALE": str(4 / 604800)})  # the 7-day window lasts 4 s
    assert result.returncode == 1, result.stdout + result.stderr
    assert "waiting: upstream default" in result.stderr
    errors = read(err)
    assert set(errors) == {f"c{i}" for i in range(30)}
    assert {e["error"]["code"] for e in errors.values()} == {"batch_expired"}
