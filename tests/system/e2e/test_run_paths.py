"""`batchgate run` checks where results go before anything runs; `-` is stdin for INPUT and stdout for -o."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, base_env, run_cli
from runtools import batch_lines, ids, read_results, write_input


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


def refused(result: subprocess.CompletedProcess[str], fake: FakeUpstream, words: str) -> None:
    """One clear line, exit 2, and nothing sent."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fake.stats()["total"] == 0


@pytest.mark.parametrize("flag", ["-o", "--errors"])
def test_a_missing_directory_is_refused_before_anything_runs(
    tmp_path: Path, fake_upstream_factory: Any, flag: str
) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src = write_input(tmp_path / "in.jsonl", batch_lines(5))
    paths = {"-o": tmp_path / "out.jsonl", "--errors": tmp_path / "err.jsonl"}
    paths[flag] = tmp_path / "missing" / "x.jsonl"
    result = run_cli(["run", str(src), "-o", str(paths["-o"]), "--errors", str(paths["--errors"]),
                      "--upstream", fake.base_url])
    refused(result, fake, f"directory {tmp_path / 'missing'} does not exist")


def test_a_directory_or_the_input_as_output_is_refused(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src = write_input(tmp_path / "in.jsonl", batch_lines(5))
    refused(run_cli(["run", str(src), "-o", str(tmp_path), "--upstream", fake.base_url]), fake, "is a directory")
    refused(run_cli(["run", str(src), "-o", str(src), "--upstream", fake.base_url]), fake, "is the input file")
    assert src.read_bytes() == write_input(tmp_path / "again.jsonl", batch_lines(5)).read_bytes()


def test_stdout_needs_a_place_for_errors(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src = write_input(tmp_path / "in.jsonl", batch_lines(5))
    refused(run_cli(["run", str(src), "-o", "-", "--upstream", fake.base_url]), fake, "--errors")


def run_piped(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "batchgate", *args], input=stdin, capture_output=True,
                          env=base_env(), timeout=60, check=False)


def test_stdin_in_and_stdout_out(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    lines = batch_lines(30, bad_every=10)
    data = write_input(tmp_path / "in.jsonl", lines).read_bytes()
    err = tmp_path / "err.jsonl"

    result = run_piped(["run", "-", "-o", "-", "--errors", str(err), "--upstream", fake.base_url], data)
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]  # stdout holds result lines only
    assert {line["custom_id"] for line in outputs} == {cid for cid in ids(lines) if cid.startswith("c")}
    assert set(read_results(err)) == {"bad9", "bad19", "bad29"}
    assert b"completed: 27 succeeded, 3 failed" in result.stderr

    both = run_piped(["run", "-", "-o", "-", "--errors", "-", "--upstream", fake.base_url], data)
    assert both.returncode == 0, both.stderr
    assert sorted(json.loads(line)["custom_id"] for line in both.stdout.splitlines()) == sorted(ids(lines))


def test_a_data_dir_with_other_batchgate_data_is_refused(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src = write_input(tmp_path / "in.jsonl", batch_lines(5))
    server_data = tmp_path / "batchgate-data"
    server_data.mkdir()
    (server_data / "batchgate.sqlite3").write_bytes(b"a server's database")
    result = run_cli(["run", str(src), "-o", str(tmp_path / "out.jsonl"), "--data-dir", str(server_data),
                      "--upstream", fake.base_url])
    refused(result, fake, "holds batchgate data")
    assert (server_data / "batchgate.sqlite3").read_bytes() == b"a server's database"
