"""A small batchgate cluster on this machine: N API processes (`serve --no-worker`) and M worker processes
(`batchgate worker`) sharing one PostgreSQL database and one S3 server.

Where the kernel allows it (root, `unshare`), each worker runs in its own UTS namespace with its own host name,
so the workers are different hosts as far as leases go: a dead worker's chunks are not released by a neighbour
noticing its pid is gone, only by the lease running out, as on separate machines.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

from harness import BatchgateServer, base_env, stop_process


@cache
def can_unshare_uts() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname bg-probe"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class WorkerProcess:
    def __init__(self, name: str, log_dir: Path, upstream: str, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.hostname = name if can_unshare_uts() else None
        cmd = [sys.executable, "-m", "batchgate", "worker", "--data-dir", str(log_dir / name), "--upstream", upstream]
        if self.hostname is not None:
            # `unshare` and `sh -c exec` keep the pid: the lease owner id names this very process.
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"', "sh", *cmd]
        full_env = base_env()
        full_env.update(env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)

    @property
    def owner_pattern(self) -> str:
        """SQL LIKE pattern matching the lease owner ids of this process (host:pid:token)."""
        return f"%:{self.proc.pid}:%"

    def kill9(self) -> None:
        stop_process(self.proc, signal.SIGKILL)

    def terminate(self, grace: float = 20.0) -> int:
        stop_process(self.proc, signal.SIGTERM, grace=grace)
        return self.proc.returncode

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill9()
        self._log.close()


class Cluster:
    def __init__(self, root: Path, upstream: str, env: dict[str, str], apis: int, workers: int) -> None:
        self.root = root
        self.upstream = upstream
        self.env = env
        self.apis: list[BatchgateServer] = []
        self.workers: list[WorkerProcess] = []
        try:
            for i in range(apis):
                api = BatchgateServer(root / f"api{i}", upstream=upstream, args=["--no-worker"], env=env)
                self.apis.append(api)
                api.start()
            for i in range(workers):
                self.add_worker(f"bg-worker-{i}")
        except BaseException:
            self.close()
            raise

    def add_worker(self, name: str) -> WorkerProcess:
        w = WorkerProcess(name, self.root, self.upstream, self.env)
        self.workers.append(w)
        return w

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in self.workers) + "".join(
            f"\n--- api {a.port}\n{a.log_tail(2000)}" for a in self.apis)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        for a in self.apis:
            a.kill()
