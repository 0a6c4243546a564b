"""SIGTERM mid-batch: the server stops claiming, hands its work back, exits 0; a restart loses nothing."""

from __future__ import annotations

import time
from typing import Any

from helpers import assert_exactly_once, chat_line, submit_batch, unique, wait_for_batch, wait_until


def test_sigterm_mid_batch_exits_0_and_restart_finishes_exactly_once(server_factory: Any,
                                                                     fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    fake.control(latency=0.2)
    server = server_factory(upstream=fake.base_url,
                            env={"BATCHGATE_UPSTREAM_CONCURRENCY": "8", "BATCHGATE_LEASE_SECONDS": "30"})
    client = server.client()
    ids = [unique("term") for _ in range(200)]
    batch = submit_batch(client, [chat_line(cid, cid) for cid in ids])
    wait_until(client, batch.id, lambda b: b.request_counts is not None and b.request_counts.completed >= 20)

    started = time.monotonic()
    server.stop(grace=20)
    assert server.proc is not None and server.proc.returncode == 0, server.log_tail()
    assert time.monotonic() - started < 15  # in-flight requests finish or are checkpointed within the grace

    # The lease was 30 s: only a graceful hand-back lets the restarted server go on at once.
    server.start()
    client = server.client()
    t0 = time.monotonic()
    done = wait_for_batch(client, batch.id, timeout=25)
    assert done.status == "completed"
    assert time.monotonic() - t0 < 25
    _, errors = assert_exactly_once(client, done, ids)
    assert not errors
    received = fake.stats()["by_key"]
    assert sum(received.values()) <= len(ids) + 8  # at most the in-flight window was sent again
