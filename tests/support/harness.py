"""Real processes for the tests: the fake upstream and `batchgate serve`, each on a real port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from openai import OpenAI

SUPPORT_DIR = Path(__file__).resolve().parent
SRC_DIR = SUPPORT_DIR.parents[1] / "src"
FAKE_UPSTREAM = SUPPORT_DIR / "fake_upstream.py"
READY_TIMEOUT = 20.0

# Settings every test server gets unless a test overrides them: quick retries, quick polling.
TEST_SERVER_ENV = {
    "BATCHGATE_RETRY_BASE_SECONDS": "0.05",
    "BATCHGATE_RETRY_MAX_SECONDS": "0.5",
    "BATCHGATE_POLL_INTERVAL": "0.05",
}


def base_env() -> dict[str, str]:
    """The parent's environment without BATCHGATE_* settings, with src/ importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHGATE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p)
    env.update(TEST_SERVER_ENV)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(method: str, url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Signal the process group, wait, escalate to SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    else:
        proc.wait()


class FakeUpstream:
    """`tests/support/fake_upstream.py` running as a subprocess."""

    def __init__(self, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_UPSTREAM), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"fake upstream did not start: {line!r} {log_path.read_text()}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    def control(self, **knobs: Any) -> dict[str, Any]:
        return http_json("POST", self.url + "/_control", knobs)  # type: ignore[no-any-return]

    def knobs(self) -> dict[str, Any]:
        return http_json("GET", self.url + "/_control")  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return http_json("GET", self.url + "/_stats")  # type: ignore[no-any-return]

    def reset(self) -> None:
        http_json("POST", self.url + "/_reset", {})

    def stop(self) -> None:
        stop_process(self.proc, grace=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class BatchgateServer:
    """`python -m batchgate serve` as a subprocess on a real port, with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        upstream: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        env_only: bool = False,
    ) -> None:
        self.env_only = env_only  # pass host/port/data dir/upstream as BATCHGATE_* variables, not flags
        self.data_dir = data_dir
        self.upstream = upstream
        self.args = list(args or [])
        self.env_overrides = dict(env or {})
        self.host = host
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._clients: list[OpenAI] = []
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server-{self.starts}.log"

    def command(self) -> list[str]:
        if self.env_only:
            return [sys.executable, "-m", "batchgate", "serve", *self.args]
        cmd = [sys.executable, "-m", "batchgate", "serve", "--host", self.host, "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.upstream is not None:
            cmd += ["--upstream", self.upstream]
        return cmd + self.args

    def environment(self) -> dict[str, str]:
        env = base_env()
        if self.env_only:
            env.update(BATCHGATE_HOST=self.host, BATCHGATE_PORT=str(self.port), BATCHGATE_DATA_DIR=str(self.data_dir))
            if self.upstream is not None:
                env["BATCHGATE_UPSTREAM"] = self.upstream
        env.update(self.env_overrides)
        return env

    def start(self, wait: bool = True) -> BatchgateServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reap()
                raise RuntimeError(f"batchgate exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"batchgate not ready after {timeout}s:\n{self.log_tail()}")

    def client(self, api_key: str = "test", **kwargs: Any) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 60.0)
        client = OpenAI(base_url=self.base_url, api_key=api_key, **kwargs)
        self._clients.append(client)
        return client

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def _reap(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, grace: float = 10.0) -> None:
        """Graceful stop (SIGTERM, SIGKILL after `grace` seconds)."""
        self._close_clients()
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, grace=grace)
        self._reap()

    def kill(self) -> None:
        """kill -9 the whole process group, no chance to clean up."""
        self._close_clients()
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)
        self._reap()

    def restart(self, hard: bool = False) -> BatchgateServer:
        """Stop (or kill -9 with hard=True) and start again on the same data dir and port."""
        self.kill() if hard else self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m batchgate ARGS` to completion."""
    full_env = base_env()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "batchgate", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def create_key(data_dir: Path, project: str) -> str:
    """`batchgate keys create --project NAME --data-dir DIR`; the key is the last stdout line."""
    data_dir.mkdir(parents=True, exist_ok=True)
    result = run_cli(["keys", "create", "--project", project, "--data-dir", str(data_dir)])
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1].strip()
    assert key.startswith("bg-"), result.stdout
    return key
