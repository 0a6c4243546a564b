"""Route pools in a running server: a replica that is gone is taken out and its requests go to the others; the only
upstream gone is waited out (two WARNING lines, /metrics and the dashboard show it, no line fails) and the batch
completes once it answers. Untimed: the tests wait for states."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness import BatchgateServer, FakeUpstream, free_port
from helpers import chat_line, raw, submit_batch, wait_for_batch
from prometheus_client.parser import text_string_to_metric_families


def metric(server: BatchgateServer, name: str, **labels: str) -> float | None:
    body = raw(server.url, "GET", "/metrics", api_key=None).body.decode()
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and set(labels.items()) <= set(s.labels.items()):
                return float(s.value)
    return None


def wait_until(check: Any, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit  # a bound for a hung server, not a timing assertion
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_gone_replica_is_taken_out_and_no_line_fails(tmp_path: Path, server_factory: Any,
                                                        fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config = tmp_path / "routes.toml"
    config.write_text(f'[[upstreams]]\nname = "pool"\nurls = ["{fake.base_url}", "{dead}"]\n')
    server = server_factory(upstream=None, args=["--config", str(config)], env={"BATCHGATE_MAX_ATTEMPTS": "1"})
    client = server.client()
    batch = submit_batch(client, [chat_line(f"c{i}") for i in range(300)])
    batch = wait_for_batch(client, batch.id, timeout=120)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (300, 0)
    assert fake.stats()["total"] == 300
    assert metric(server, "batchgate_replica_up", upstream="pool", replica=dead) == 0
    assert metric(server, "batchgate_replica_up", upstream="pool", replica=fake.base_url) == 1
    assert metric(server, "batchgate_upstream_down", upstream="pool") == 0
    page = raw(server.url, "GET", "/ui/fragments/upstreams", api_key=None).body.decode()
    assert f'data-replica="{dead}" data-up="no"' in page


def test_an_outage_is_waited_out_and_the_batch_completes(tmp_path: Path, server_factory: Any) -> None:
    port = free_port()
    server = server_factory(upstream=f"http://127.0.0.1:{port}/v1", env={"BATCHGATE_MAX_ATTEMPTS": "1"})
    client = server.client()
    batch = submit_batch(client, [chat_line(f"c{i}") for i in range(200)])
    wait_until(lambda: metric(server, "batchgate_upstream_down", upstream="default") == 1, "route never down")
    page = raw(server.url, "GET", "/ui/fragments/upstreams", api_key=None).body.decode()
    assert 'data-state="down"' in page
    assert client.batches.retrieve(batch.id).request_counts.failed == 0  # type: ignore[union-attr]
    fake = FakeUpstream(tmp_path / "fake.log", port=port)
    try:
        batch = wait_for_batch(client, batch.id, timeout=120)
        assert fake.stats()["total"] == 200  # each line once
    finally:
        fake.stop()
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (200, 0)
    assert metric(server, "batchgate_upstream_down", upstream="default") == 0
    warnings = [ln for ln in server.log_tail(2_000_000).splitlines() if "WARNING" in ln and "upstream default" in ln]
    assert len(warnings) == 2, warnings
    assert "every replica is down" in warnings[0] and "dispatch resumed" in warnings[1]
