"""Scale-out: dispatch throughput with 1, 2 and 4 worker processes on one PostgreSQL database and one S3 server,
and how long a dead worker's chunks take to be picked up again.

    python bench/scaleout.py [--requests 20000] [--workers 1,2,4] [--base 0.1] [--out docs/benchmarks-scaleout.md]

Each run gets a fresh database on the local PostgreSQL server (127.0.0.1:5432, trust auth; --pg-admin to
change), one `serve --no-worker` API process, N `batchgate worker` processes, moto's S3 server, and the engine
simulator (bench/simulator.py) with `--base` seconds per request and enough slots that it is never the limit.
Dispatch throughput is read from request_counts between 10% and 90% completion (validation and finalization
excluded); end-to-end is create -> completed. Resume: a worker is killed with SIGKILL while it holds chunk
leases; we time until every chunk it held has been claimed by another worker. Workers run in their own UTS
namespace (own host name) when `unshare` works, so a dead worker's leases are only freed by expiry (as across
machines); `--same-host` measures the same-machine path (the dead pid is noticed by a neighbour).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from common import ROOT, chat_lines, free_port, fresh_database, simulator, wait_http
from openai import OpenAI

BUCKET = "bench"


# -- processes --------------------------------------------------------------------------------------------------
def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHGATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env.update(extra)
    return env


def _stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        os.killpg(p.pid, sig)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    port = free_port()
    with open(log, "wb") as out:
        p = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/moto-api/")
            req = urllib.request.Request(f"{url}/{BUCKET}", method="PUT")  # moto accepts unsigned requests
            urllib.request.urlopen(req).close()
            yield url
        finally:
            _stop(p)


class Deployment:
    """One API process and N workers sharing a fresh database and the S3 server."""

    def __init__(self, stack: ExitStack, tmp: Path, db_url: str, s3_url: str, upstream: str, lease: float,
                 separate_hosts: bool) -> None:
        self.tmp = tmp
        self.upstream = upstream
        self.separate_hosts = separate_hosts and _can_unshare()
        self.env = _env({
            "BATCHGATE_DATABASE_URL": db_url, "BATCHGATE_STORAGE_URL": f"s3://{BUCKET}/run{secrets.token_hex(3)}",
            "BATCHGATE_S3_ENDPOINT_URL": s3_url, "BATCHGATE_S3_REGION": "us-east-1",
            "BATCHGATE_S3_ACCESS_KEY_ID": "bench", "BATCHGATE_S3_SECRET_ACCESS_KEY": "bench",
            "BATCHGATE_LEASE_SECONDS": str(lease), "BATCHGATE_LOG_LEVEL": "warning",
            "BATCHGATE_POLL_INTERVAL": "0.1",
        })
        self.workers: list[subprocess.Popen[bytes]] = []
        self._stack = stack
        port = free_port()
        api = self._spawn([sys.executable, "-m", "batchgate", "serve", "--no-worker", "--port", str(port),
                           "--data-dir", str(tmp / "api"), "--upstream", upstream + "/v1"], "api")
        wait_http(f"http://127.0.0.1:{port}/health")
        self.api = api
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def _spawn(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        out = self._stack.enter_context(open(self.tmp / f"{name}.log", "wb"))
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self._stack.callback(_stop, p)
        return p

    def add_worker(self) -> subprocess.Popen[bytes]:
        i = len(self.workers)
        cmd = [sys.executable, "-m", "batchgate", "worker", "--data-dir", str(self.tmp / f"w{i}"),
               "--upstream", self.upstream + "/v1"]
        if self.separate_hosts:
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname bench-w{i} && exec "$@"', "sh", *cmd]
        p = self._spawn(cmd, f"worker{i}")
        self.workers.append(p)
        return p


# -- CPU accounting (Linux /proc) ---------------------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def postgres_pids() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def machine_busy_seconds() -> float:
    """CPU seconds spent by everything on the machine (other users' load included)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def cpu_snapshot(d: Deployment) -> dict[str, float]:
    return {
        "machine": machine_busy_seconds(),
        "workers": sum(cpu_seconds(w.pid) for w in d.workers),
        "api": cpu_seconds(d.api.pid),
        "postgres": sum(cpu_seconds(pid) for pid in postgres_pids()),
    }


async def _rows(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# -- measurements ---------------------------------------------------------------------------------------------
def submit(base_url: str, n: int) -> tuple[OpenAI, str, float]:
    client = OpenAI(base_url=base_url, api_key="bench", max_retries=2)
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in chat_lines(n))
    f = client.files.create(file=("bench.jsonl", data), purpose="batch")
    t0 = time.monotonic()
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    return client, b.id, t0


def throughput_run(admin: str, s3_url: str, upstream: str, workers: int, n: int, tmp: Path) -> dict[str, Any]:
    with fresh_database(admin) as db, ExitStack() as stack:
        d = Deployment(stack, tmp, db, s3_url, upstream, lease=15.0, separate_hosts=True)
        for _ in range(workers):
            d.add_worker()
        client, batch_id, t0 = submit(d.base_url, n)
        cpu0, wall0 = cpu_snapshot(d), time.monotonic()
        marks: dict[float, float] = {}
        while True:
            b = client.batches.retrieve(batch_id)
            done = b.request_counts.completed + b.request_counts.failed if b.request_counts else 0
            now = time.monotonic()
            for frac in (0.1, 0.9):
                if frac not in marks and done >= frac * n:
                    marks[frac] = now
            if b.status in ("completed", "failed", "cancelled", "expired"):
                break
            time.sleep(0.05)
        total = time.monotonic() - t0
        cpu1, wall = cpu_snapshot(d), time.monotonic() - wall0
        client.close()
        assert b.status == "completed", b
        rate = 0.8 * n / (marks[0.9] - marks[0.1])
        used = {k: cpu1[k] - cpu0[k] for k in cpu0}
        return {"workers": workers, "requests": n, "dispatch_rps": rate, "end_to_end_s": total,
                "cpu_ms_per_request": {k: 1000 * v / n for k, v in used.items()},
                "worker_cores_busy": used["workers"] / wall, "postgres_cores_busy": used["postgres"] / wall,
                "machine_cores_busy": used["machine"] / wall}


def resume_run(admin: str, s3_url: str, upstream: str, n: int, lease: float, separate_hosts: bool,
               tmp: Path) -> dict[str, Any]:
    with fresh_database(admin) as db, ExitStack() as stack:
        d = Deployment(stack, tmp, db, s3_url, upstream, lease=lease, separate_hosts=separate_hosts)
        victim = d.add_worker()
        d.add_worker()
        client, batch_id, _ = submit(d.base_url, n)
        held: list[Any] = []
        while not held:
            held = asyncio.run(_rows(
                db, "SELECT idx, generation FROM chunks WHERE lease_owner LIKE $1 AND NOT done "
                "AND lease_until > extract(epoch FROM clock_timestamp())", f"%:{victim.pid}:%"))
            time.sleep(0.01)
        os.killpg(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.wait()  # reaped, as a supervisor would: a zombie still answers kill(pid, 0)
        gens = {r[0]: r[1] for r in held}
        while True:
            now_rows = asyncio.run(_rows(db, "SELECT idx, generation, lease_owner, done FROM chunks "
                                             "WHERE idx = ANY($1)", list(gens)))
            if all(r[3] or (r[1] > gens[r[0]] and f":{victim.pid}:" not in (r[2] or "")) for r in now_rows):
                break
            time.sleep(0.02)
        resumed = time.monotonic() - killed
        while client.batches.retrieve(batch_id).status != "completed":
            time.sleep(0.1)
        client.close()
        return {"lease_s": lease, "separate_hosts": d.separate_hosts, "chunks_held": len(gens),
                "resume_s": resumed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--base", type=float, default=0.1, help="simulator seconds per request")
    p.add_argument("--leases", default="2,15", help="lease seconds to measure resume with")
    p.add_argument("--repeat", type=int, default=3, help="runs per worker count (the median is reported)")
    p.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--out", type=Path, help="write a markdown report here")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bg-scaleout-") as t, ExitStack() as stack:
        tmp = Path(t)
        upstream = stack.enter_context(simulator("--slots", "100000", "--base", str(a.base)))
        s3_url = stack.enter_context(moto_server(tmp / "moto.log"))
        runs = []
        for w in (int(x) for x in a.workers.split(",")):
            tries = []
            for i in range(a.repeat):
                (tmp / f"t{w}-{i}").mkdir()
                r = throughput_run(a.pg_admin, s3_url, upstream, w, a.requests, tmp / f"t{w}-{i}")
                print(json.dumps(r), flush=True)
                tries.append(r)
            tries.sort(key=lambda r: r["dispatch_rps"])
            runs.append({**tries[len(tries) // 2], "all_rps": [t["dispatch_rps"] for t in tries]})
        resumes = []
        for lease in (float(x) for x in a.leases.split(",")):
            for separate in (True, False):
                d = tmp / f"r{lease}{separate}"
                d.mkdir()
                r = resume_run(a.pg_admin, s3_url, upstream, 5000, lease, separate, d)
                print(json.dumps(r), flush=True)
                resumes.append(r)
    if a.out:
        a.out.write_text(report(a, runs, resumes))


def report(a: argparse.Namespace, runs: list[dict[str, Any]], resumes: list[dict[str, Any]]) -> str:
    cmd = "python bench/scaleout.py " + " ".join(sys.argv[1:])
    one = runs[0]["dispatch_rps"]
    lines = [
        "# Scale-out benchmark (PostgreSQL + S3, N worker processes)", "",
        f"Command: `{cmd}`", "",
        f"Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}, PostgreSQL on 127.0.0.1, moto S3 server, engine simulator with "
        f"{a.base} s per request and unlimited slots. One `serve --no-worker` API process. Every process of "
        "the deployment (API, workers, PostgreSQL, moto, simulator, the polling client) shares these cores.", "",
        f"| worker processes | requests | dispatch, median of {a.repeat} (req/s, 10%→90%) | all runs | "
        "vs 1 worker | create → completed (s, median run) | worker CPU (ms/request) | PostgreSQL CPU "
        "(ms/request) | cores busy: workers + PostgreSQL / whole machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        every = ", ".join(f"{x:.0f}" for x in r["all_rps"])
        c = r["cpu_ms_per_request"]
        lines.append(f"| {r['workers']} | {r['requests']} | {r['dispatch_rps']:.0f} | {every} | "
                     f"{r['dispatch_rps'] / one:.2f}x | {r['end_to_end_s']:.1f} | {c['workers']:.2f} | "
                     f"{c['postgres']:.2f} | {r['worker_cores_busy']:.2f} + {r['postgres_cores_busy']:.2f} / "
                     f"{r['machine_cores_busy']:.2f} |")
    lines += ["", "Resuming a dead worker's chunks (killed with SIGKILL while holding leases; time until every "
              "chunk it held was claimed by another worker):", "",
              "| lease (s) | workers as | chunks held | resumed after (s) |", "|---|---|---|---|"]
    for r in resumes:
        kind = "separate hosts (lease expiry)" if r["separate_hosts"] else "one host (dead pid noticed)"
        lines.append(f"| {r['lease_s']:g} | {kind} | {r['chunks_held']} | {r['resume_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
