"""`batchgate run` stopped by SIGINT or SIGTERM writes what it has and resumes on the same command; two runs of
one batch never both run it; the state goes once the results are written (unless --keep-state)."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, run_cli
from runtools import batch_lines, finish, ids, read_results, start_run, wait_sent, write_input

LINES = 400
WINDOW = 8  # --max-concurrency: the most requests in flight, so the most a stop can make us send again
RESUMING = re.compile(r"resuming (batch_\w+) \((\d+) done\)")


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home / "batchgate" / "runs"


def slow_fake(factory: Any) -> FakeUpstream:
    fake: FakeUpstream = factory()
    fake.control(latency=0.05)
    return fake


def args(src: Path | str, out: Path | str, err: Path | str, fake: FakeUpstream, *more: str) -> list[str]:
    return ["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url,
            "--max-concurrency", str(WINDOW), *more]


def check_stopped(code: int, stderr: str, expected: int, out: Path, err: Path) -> set[str]:
    """The stopped run's exit, message and partial files; the custom_ids it wrote."""
    assert code == expected, stderr
    assert "Traceback" not in stderr
    outputs, errors = read_results(out), read_results(err)
    assert all(line["response"]["status_code"] == 200 for line in outputs.values())
    assert all(cid.startswith("bad") and line["response"]["status_code"] == 400 for cid, line in errors.items())
    written = set(outputs) | set(errors)
    assert not set(outputs) & set(errors)
    assert 0 < len(written) < LINES
    assert f"{LINES - len(written)} of {LINES} lines did not run" in stderr, stderr
    assert "Run the same command to resume" in stderr
    return written


def check_resumed(stderr: str, written: set[str], fake: FakeUpstream, all_ids: set[str], out: Path,
                  err: Path) -> None:
    """The rerun resumed the stopped batch, and between them every line ran once (the window aside)."""
    resumed = RESUMING.search(stderr)
    assert resumed, stderr
    assert int(resumed.group(2)) == len(written)  # what the stopped run wrote is all it had recorded
    outputs, errors = read_results(out), read_results(err)
    assert not set(outputs) & set(errors)
    assert set(outputs) | set(errors) == all_ids
    sent = fake.stats()["by_key"]
    assert set(sent) == all_ids
    assert all(sent[cid] == 1 for cid in written)  # recorded results were never sent again
    assert sum(n - 1 for n in sent.values()) <= WINDOW  # only what was in flight at the stop went twice


def test_sigint_writes_what_it_has_and_the_same_command_resumes(
    tmp_path: Path, fake_upstream_factory: Any, state_home: Path
) -> None:
    fake = slow_fake(fake_upstream_factory)
    lines = batch_lines(LINES, bad_every=40)
    src = write_input(tmp_path / "in.jsonl", lines)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"

    proc = start_run(args(src, out, err, fake))
    wait_sent(fake, 120, proc)
    proc.send_signal(signal.SIGINT)
    code, _, stderr = finish(proc, timeout=30)
    written = check_stopped(code, stderr, 130, out, err)
    assert any(cid.startswith("bad") for cid in written)  # failed lines recorded so far are written too

    again = run_cli(args(src, out, err, fake))
    assert again.returncode == 0, again.stderr
    check_resumed(again.stderr, written, fake, ids(lines), out, err)
    assert not state_home.exists() or not any(state_home.iterdir())  # done: nothing left to resume


def test_sigterm_on_stdin_resumes_without_storing_the_input_twice(
    tmp_path: Path, fake_upstream_factory: Any, state_home: Path
) -> None:
    fake = slow_fake(fake_upstream_factory)
    lines = batch_lines(LINES, bad_every=40)
    data = write_input(tmp_path / "in.jsonl", lines).read_bytes()
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    cmd = args("-", out, err, fake, "--keep-state")

    proc = start_run(cmd, stdin=data)
    wait_sent(fake, 120, proc)
    proc.send_signal(signal.SIGTERM)
    code, _, stderr = finish(proc, timeout=30)
    written = check_stopped(code, stderr, 143, out, err)

    again = start_run(cmd, stdin=data)
    code, _, stderr = finish(again)
    assert code == 0, stderr
    check_resumed(stderr, written, fake, ids(lines), out, err)

    # --keep-state kept it: one stored input (the resumed run did not store stdin's bytes again), and no copy.
    [state] = list(state_home.iterdir())
    with sqlite3.connect(state / "batchgate.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM files WHERE purpose = 'batch'").fetchone() == (1,)
    assert not (state / "stdin.jsonl").exists()
    # The same command once more finds the finished batch: it writes its results again and sends nothing.
    out.unlink()
    total = fake.stats()["total"]
    third = start_run(cmd[:-1], stdin=data)
    code, _, stderr = finish(third)
    assert code == 0, stderr
    assert RESUMING.search(stderr) and f"({LINES} done)" in stderr
    assert fake.stats()["total"] == total
    assert set(read_results(out)) | set(read_results(err)) == ids(lines)
    assert not any(state_home.iterdir())  # without --keep-state this time: gone, the next run starts afresh


def test_second_sigint_quits_at_once_and_loses_nothing(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake = slow_fake(fake_upstream_factory)
    lines = batch_lines(LINES)
    src = write_input(tmp_path / "in.jsonl", lines)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"

    proc = start_run(args(src, out, err, fake))
    wait_sent(fake, 120, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    code, _, stderr = finish(proc, timeout=30)
    assert time.monotonic() - started < 10
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert not list(tmp_path.glob(".*.part"))  # no half-written file left behind

    again = run_cli(args(src, out, err, fake))
    assert again.returncode == 0, again.stderr
    resumed = RESUMING.search(again.stderr)
    assert resumed and int(resumed.group(2)) > 0, again.stderr
    assert set(read_results(out)) | set(read_results(err)) == ids(lines)
    sent = fake.stats()["by_key"]
    assert sum(n - 1 for n in sent.values()) <= WINDOW


def test_a_second_run_of_the_same_batch_refuses(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake = slow_fake(fake_upstream_factory)
    fake.control(latency=0.2)  # 5 s in all: time for the second process to start while the first runs
    lines = batch_lines(200)
    src = write_input(tmp_path / "in.jsonl", lines)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"

    first = start_run(args(src, out, err, fake))
    wait_sent(fake, 20, first)
    second = run_cli(args(src, tmp_path / "out2.jsonl", tmp_path / "err2.jsonl", fake))
    assert second.returncode == 75, second.stderr
    assert "already" in second.stderr and "Traceback" not in second.stderr
    assert first.poll() is None  # it was refused because the first was running, not after it ended
    assert not (tmp_path / "out2.jsonl").exists()

    code, _, stderr = finish(first)
    assert code == 0, stderr
    assert set(read_results(out)) == ids(lines)
    assert fake.stats()["total"] == len(lines)  # the batch ran once


def test_data_dir_holds_the_state_and_refuses_another_batch(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake = slow_fake(fake_upstream_factory)
    lines = batch_lines(LINES)
    src = write_input(tmp_path / "in.jsonl", lines)
    other = write_input(tmp_path / "other.jsonl", batch_lines(3))
    out, err, data = tmp_path / "out.jsonl", tmp_path / "err.jsonl", tmp_path / "work"

    proc = start_run(args(src, out, err, fake, "--data-dir", str(data)))
    wait_sent(fake, 60, proc)
    proc.send_signal(signal.SIGINT)
    assert finish(proc, timeout=30)[0] == 130
    assert (data / "run.json").exists()

    refused = run_cli(args(other, tmp_path / "o2.jsonl", tmp_path / "e2.jsonl", fake, "--data-dir", str(data)))
    assert refused.returncode == 2 and "another input" in refused.stderr, refused.stderr

    again = run_cli(args(src, out, err, fake, "--data-dir", str(data)))
    assert again.returncode == 0, again.stderr
    assert RESUMING.search(again.stderr)
    assert set(read_results(out)) == ids(lines)
    assert data.is_dir() and not any(data.iterdir())  # what the run put there is gone; the directory stays
