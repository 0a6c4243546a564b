"""A batchgate server shared by several projects, for the scheduling benchmarks (bench/fairness.py,
bench/deadlines.py): one API key per project, weights through the admin API, batches submitted through the
official SDK with each project's own key, and one admin poller that sees every project's batches at once.

The admin key is made with `batchgate keys create --admin` on the server's store before it starts; project keys
through `POST /v1/admin/keys`. Weights go through `POST /v1/admin/projects/{project}`; a server without that
route (before issue 13) lists projects without a weight, and `Tenants.weights` is then False: the benchmarks say so and
measure what creation order gives.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, chat_lines, free_port, fresh_database, process, simulator
from openai import OpenAI

TERMINAL = ("completed", "failed", "cancelled", "expired")


class Http:
    """One keep-alive connection with one bearer key; JSON in and out."""

    def __init__(self, port: int, key: str) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        try:
            return self._call(method, path, data)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle keep-alive connection: one new connection, one more try
            self._conn.close()
            return self._call(method, path, data)

    def _call(self, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
        self._conn.request(method, path, body=data, headers=self._auth)
        r = self._conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        self._conn.close()


class Tenants:
    """The server's projects: their keys, SDK clients and weights, and snapshots of every batch."""

    def __init__(self, port: int, admin_key: str, sim: str) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.sim = sim
        self.admin = Http(port, admin_key)
        self._sim = Http(int(sim.rsplit(":", 1)[1]), "none")
        self._clients: dict[str, OpenAI] = {}
        self.weights = self._probe_weights()
        self.estimates_seen = False  # whether any batch listed so far carried an estimated_completion_at

    def _probe_weights(self) -> bool:
        # Every project in the list carries its weight where the server has weights; "operators" (the admin
        # key's project) is always listed.
        status, body = self.admin.call("GET", "/v1/admin/projects")
        if status != 200 or not body["data"]:
            raise RuntimeError(f"GET /v1/admin/projects: {status} {body}")
        return "weight" in body["data"][0]

    def client(self, project: str) -> OpenAI:
        """The project's SDK client, with a key of its own (made on first use)."""
        if project not in self._clients:
            status, body = self.admin.call("POST", "/v1/admin/keys", {"project": project})
            if status != 200:
                raise RuntimeError(f"creating a key for {project}: {status} {body}")
            self._clients[project] = OpenAI(base_url=self.base_url, api_key=body["key"], max_retries=0, timeout=120)
        return self._clients[project]

    def set_weight(self, project: str, weight: float) -> bool:
        """Set the project's weight; False (nothing done) where the server has no weights."""
        if not self.weights:
            return False
        status, body = self.admin.call("POST", f"/v1/admin/projects/{project}", {"weight": weight})
        if status != 200 or body.get("weight") != weight:
            raise RuntimeError(f"setting {project}'s weight: {status} {body}")
        return True

    def submit(self, project: str, lines: int, window: str = "24h", tag: str = "") -> str:
        """Upload `lines` chat requests and create a batch with the project's key; returns its id."""
        client = self.client(project)
        tag = tag or project
        data = b"".join(json.dumps({**x, "custom_id": f"{tag}-{x['custom_id']}"}, separators=(",", ":")).encode()
                        + b"\n" for x in chat_lines(lines))
        f = client.files.create(file=(f"{tag}.jsonl", data), purpose="batch")
        return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                     completion_window=window).id  # type: ignore[arg-type]

    def batches(self) -> dict[str, dict[str, Any]]:
        """Every batch of every project (admin view, newest 100), by id."""
        status, body = self.admin.call("GET", "/v1/batches?limit=100")
        if status != 200:
            raise RuntimeError(f"listing batches: {status} {body}")
        found = {b["id"]: b for b in body["data"]}
        self.estimates_seen |= any(b.get("estimated_completion_at") is not None for b in found.values())
        return found

    def cancel(self, batch_ids: list[str]) -> None:
        """Cancel those not yet terminal and wait until every one is terminal (its requests drained)."""
        for i in batch_ids:
            self.admin.call("POST", f"/v1/batches/{i}/cancel")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen = self.batches()
            if all(seen[i]["status"] in TERMINAL for i in batch_ids):
                return
            time.sleep(0.2)
        raise TimeoutError(f"batches not terminal 120 s after cancelling: {batch_ids}")

    def wait_full(self, ids: list[str], slots: int, timeout: float = 120) -> None:
        """Until every batch in `ids` is in_progress and the simulator's last in-use sample (taken every 0.5 s)
        shows all `slots` busy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.batches()
            timeline = self.stats()["timeline"]
            if all(seen[i]["status"] == "in_progress" for i in ids) and timeline and timeline[-1] >= slots:
                return
            time.sleep(0.25)
        raise TimeoutError(f"{ids} did not fill the engine in {timeout:.0f} s")

    def stats(self) -> dict[str, Any]:
        """The simulator's counters (busy slot-seconds, served, in-use samples)."""
        status, body = self._sim.call("GET", "/_stats")
        assert status == 200, status
        return dict(body)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self.admin.close()
        self._sim.close()


def done(b: dict[str, Any]) -> int:
    """Requests of the batch that are finished (completed or failed)."""
    rc = b["request_counts"]
    return int(rc["completed"]) + int(rc["failed"])


@dataclass(frozen=True)
class Layout:
    """How batchgate runs: one `serve` on SQLite (workers=0), or `serve --no-worker` and `workers` worker
    processes on a fresh PostgreSQL database (one data directory for the files, all on this machine)."""

    workers: int = 0
    pg_admin: str = "postgresql://postgres@127.0.0.1:5432/postgres"

    def __str__(self) -> str:
        return (f"serve --no-worker + {self.workers} worker processes on PostgreSQL" if self.workers
                else "one serve process on SQLite")


@contextmanager
def shared_server(slots: int = 64, base: float = 0.1, env: dict[str, str] | None = None,
                  layout: Layout = Layout()) -> Iterator[Tenants]:
    """The engine simulator (queue mode) and batchgate with an admin key, on a fresh data dir (and database)."""
    with simulator("--slots", str(slots), "--base", str(base)) as sim, \
            tempfile.TemporaryDirectory(prefix="bg-fair-") as tmp, ExitStack() as stack:
        server_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BATCHGATE_LOG_LEVEL": "warning", **(env or {})}
        if layout.workers:
            server_env["BATCHGATE_DATABASE_URL"] = stack.enter_context(fresh_database(layout.pg_admin, "bgfair"))
        made = subprocess.run([sys.executable, "-m", "batchgate", "keys", "create", "--project", "operators",
                               "--admin", "--data-dir", tmp], env=server_env, capture_output=True, text=True,
                              check=True)
        admin_key = made.stdout.strip().splitlines()[-1]
        port = free_port()
        health = f"http://127.0.0.1:{port}/health"
        common = ["--data-dir", tmp, "--upstream", sim + "/v1"]
        serve = [sys.executable, "-m", "batchgate", "serve", "--port", str(port), *common]
        stack.enter_context(process(serve + (["--no-worker"] if layout.workers else []), health, env=server_env,
                                    log=Path(tmp) / "serve.log"))
        for i in range(layout.workers):
            stack.enter_context(process([sys.executable, "-m", "batchgate", "worker", *common], health,
                                        env=server_env, log=Path(tmp) / f"worker{i}.log"))
        t = Tenants(port, admin_key, sim)
        try:
            yield t
        finally:
            t.close()
