"""Upstream faults: 500s, 429s with Retry-After, dropped connections and hangs; and a dead upstream.

The same scenario runs standalone as `bench/faults.py` (prints the counters as JSON)."""

from __future__ import annotations

from typing import Any

from harness import free_port

from .scenarios import FAULT_SERVER_ENV, dead_upstream_run, fault_run


def test_transient_faults_all_recover_and_permanent_errors_are_kept(
    fake_upstream_factory: Any, server_factory: Any
) -> None:
    fake = fake_upstream_factory()
    server = server_factory(upstream=fake.base_url, env=FAULT_SERVER_ENV)
    run = fault_run(server, fake, n=5000, permanent_every=50, timeout=300)
    # Every fault kind really happened, and was retried.
    assert run.statuses.get("500", 0) > 250 and run.statuses.get("429", 0) > 100, run.summary()
    assert run.dropped > 50 and run.hung > 5, run.summary()
    # The batch says why it was slow: its retry counter, and the worker's log.
    assert run.retries > 0
    assert run.retries >= run.upstream_total - run.requests - 5, run.summary()  # (a hang mid-kill may not count)
    assert any("upstream retries" in line for line in run.log_lines), run.log_lines[:5]


def test_dead_upstream_is_waited_out_until_the_batch_expires(server_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    server = server_factory(upstream=dead, env={
        "BATCHGATE_MAX_ATTEMPTS": "4", "BATCHGATE_RETRY_BASE_SECONDS": "0.02", "BATCHGATE_RETRY_MAX_SECONDS": "0.2",
        "BATCHGATE_CONNECT_TIMEOUT": "1", "BATCHGATE_WINDOW_SCALE": str(8 / 86400),  # "24h" lasts 8 s
    })
    _, summary = dead_upstream_run(server, n=300, timeout=120)
    # No line spent its attempts on a route that was down: each ends batch_expired, not upstream_connection_error.
    assert len(summary["paused_lines"]) == 1 and "WARNING" in summary["paused_lines"][0], summary
