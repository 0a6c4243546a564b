"""Upstream faults at full size: a 5,000-request batch with 20% 500s, 10% 429 (Retry-After: 1), 5% dropped
connections and 1% hangs (1.5 s request timeout), 1 in 50 lines a permanent 400; then a dead upstream.

Run: .venv/bin/python bench/faults.py [--requests 5000] [--dead 2000]
Prints one JSON object with the timings and counters (the same invariants as tests/system/faults are asserted)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "system" / "faults"))

from harness import BatchgateServer, FakeUpstream, free_port  # noqa: E402
from scenarios import FAULT_SERVER_ENV, dead_upstream_run, fault_run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--dead", type=int, default=2000, help="requests in the dead-upstream batch")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bg-faults-") as tmp:
        root = Path(tmp)
        fake = FakeUpstream(root / "fake.log")
        server = BatchgateServer(root / "data", upstream=fake.base_url, env=FAULT_SERVER_ENV)
        dead_server = BatchgateServer(root / "dead", upstream=f"http://127.0.0.1:{free_port()}/v1", env={
            "BATCHGATE_MAX_ATTEMPTS": "6", "BATCHGATE_RETRY_BASE_SECONDS": "0.02",
            "BATCHGATE_RETRY_MAX_SECONDS": "0.5", "BATCHGATE_CONNECT_TIMEOUT": "1",
            "BATCHGATE_WINDOW_SCALE": str(10 / 86400)})  # the dead batch waits, then expires after 10 s
        try:
            server.start()
            run = fault_run(server, fake, a.requests, timeout=1800)
            server.stop()
            dead_server.start()
            _, dead = dead_upstream_run(dead_server, a.dead, timeout=600)
        finally:
            server.stop()
            dead_server.stop()
            fake.stop()
        print(json.dumps({"faults": run.summary(), "log_sample": run.log_lines[:3], "dead_upstream": dead},
                         indent=2))


if __name__ == "__main__":
    main()
