"""Starting up, as an operator sees it: `serve`'s one summary line, one clear line (not a traceback) when the
database or the bucket cannot be reached, a refusal hint that names the right store, and --max-concurrency."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import BatchgateServer, FakeUpstream, base_env, free_port, run_cli
from helpers import chat_line, run_batch, unique

SECRET = "hunter2-not-for-logs"


def with_password(url: str, password: str = SECRET) -> str:
    """The test server trusts every local connection, so any password works: it must still never be shown."""
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "postgres"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


def summary_lines(server: BatchgateServer) -> list[str]:
    return [ln for ln in server.log_tail(100_000).splitlines() if " · dashboard " in ln]


def test_serve_says_what_it_runs_on_in_one_line(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    server: BatchgateServer = server_factory(args=["--upstream-api-key", SECRET])
    [line] = summary_lines(server)
    assert f"batchgate 0.1.0 on http://127.0.0.1:{server.port}/v1 · " in line
    assert f" · store sqlite {server.data_dir}/batchgate.sqlite3 · files {server.data_dir}/files · " in line
    assert f" · models * -> {fake_upstream.base_url} · " in line
    assert line.endswith(f" · dashboard http://127.0.0.1:{server.port}/ui")
    assert SECRET not in server.log_tail(100_000)


def test_the_summary_masks_the_database_password(server_factory: Any, pg_url: str) -> None:
    server: BatchgateServer = server_factory(args=["--database-url", with_password(pg_url), "--no-worker"])
    [line] = summary_lines(server)
    assert " · store " + with_password(pg_url, "***") + " · " in line
    assert " · no worker (run `batchgate worker`) · " in line
    assert SECRET not in server.log_tail(100_000)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()  # nothing else: no log lines, no warnings
    return line


def test_unreachable_postgres_is_one_line_for_every_command(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://batchgate:{SECRET}@127.0.0.1:{port}/batchgate"
    commands = [["serve", "--port", str(free_port())], ["worker"], ["migrate"],
                ["keys", "create", "--project", "ops"], ["keys", "list"], ["keys", "revoke", "key_x"]]
    for command in commands:
        line = one_line_failure(run_cli([*command, "--data-dir", str(tmp_path), "--database-url", url]))
        assert line == (f"Error: cannot use PostgreSQL at postgresql://batchgate:***@127.0.0.1:{port}/batchgate: "
                        "connection refused"), command


def test_unreachable_s3_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = {"BATCHGATE_STORAGE_URL": "s3://results/bg", "BATCHGATE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "BATCHGATE_S3_ACCESS_KEY_ID": "testing", "BATCHGATE_S3_SECRET_ACCESS_KEY": SECRET,
           "BATCHGATE_S3_REGION": "us-east-1"}
    commands = [["serve", "--port", str(free_port())], ["worker"]]
    # botocore retries a refused connection for ~20 s before giving up: run both at once
    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(lambda c: run_cli([*c, "--data-dir", str(tmp_path / c[0])], env=env), commands))
    for result in results:
        line = one_line_failure(result)
        assert line.startswith(f"Error: cannot use S3 bucket 'results' at http://127.0.0.1:{port}: "), line
        assert "Could not connect" in line


def hint_of(refusal: subprocess.CompletedProcess[str]) -> list[str]:
    line = one_line_failure(refusal)
    command = re.search(r"`(batchgate keys create [^`]*)`", line)
    assert command, line
    return shlex.split(command.group(1))


def refuse_public(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(data_dir), *flags])


def test_the_refusal_hint_creates_the_key_where_the_server_looks(server_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    hint = hint_of(refuse_public(data))
    assert hint == ["batchgate", "keys", "create", "--project", "NAME", "--data-dir", str(data.resolve())]

    # pasted as it is (from another directory), with a project name: the server then starts
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = [sys.executable, "-m", "batchgate", *hint[1:4], "ops", *hint[5:]]
    created = subprocess.run(run, cwd=elsewhere, env=base_env(), capture_output=True, text=True, timeout=60,
                             check=False)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    server: BatchgateServer = server_factory(host="0.0.0.0", data_dir=data)
    assert server.client(api_key=key).files.list().data == []


def test_the_refusal_hint_names_the_database_without_its_password(tmp_path: Path, pg_url: str) -> None:
    hint = hint_of(refuse_public(tmp_path / "files", "--database-url", with_password(pg_url)))
    assert hint == ["batchgate", "keys", "create", "--project", "NAME", "--database-url", with_password(pg_url, "***")]


def max_in_flight(fake: FakeUpstream, client_of: Callable[[], Any]) -> int:
    fake.control(latency=0.2)
    done = run_batch(client_of(), [chat_line(unique()) for _ in range(24)])
    assert done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 24
    return int(fake.stats()["max_in_flight"])


def test_max_concurrency_caps_requests_in_flight(server_factory: Any,
                                                 fake_upstream_factory: Callable[[], FakeUpstream]) -> None:
    fake = fake_upstream_factory()
    server: BatchgateServer = server_factory(upstream=fake.base_url, args=["--max-concurrency", "3"])
    assert max_in_flight(fake, server.client) == 3
    assert "(at most 3 in flight)" in summary_lines(server)[0]


def test_max_concurrency_on_a_worker_process(server_factory: Any, pg_url: str, tmp_path: Path,
                                             fake_upstream_factory: Callable[[], FakeUpstream]) -> None:
    fake = fake_upstream_factory()
    api: BatchgateServer = server_factory(upstream=fake.base_url, args=["--no-worker", "--database-url", pg_url])
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "batchgate", "worker", "--data-dir", str(api.data_dir), "--database-url", pg_url,
         "--upstream", fake.base_url, "--max-concurrency", "2"],
        stdout=log, stderr=subprocess.STDOUT, env=base_env(), start_new_session=True,
    )
    try:
        assert max_in_flight(fake, api.client) == 2
    finally:
        worker.terminate()
        assert worker.wait(timeout=30) == 0
        log.close()
    [line] = [ln for ln in (tmp_path / "worker.log").read_text().splitlines() if "batchgate 0.1.0 worker · " in ln]
    assert f" · models * -> {fake.base_url} (at most 2 in flight)" in line
