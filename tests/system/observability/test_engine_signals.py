"""Engine signals and priorities in a running server: a pool whose routing file asks for `engine_metrics` shows
each replica's engine load on `/metrics` and on the dashboard, following the engine, and a route with
`batch_priority` sends it with every line. Untimed: the test waits for states."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness import BatchgateServer, FakeUpstream
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


def test_engine_load_is_shown_and_followed_and_priority_is_sent(tmp_path: Path, server_factory: Any,
                                                                fake_upstream_factory: Any) -> None:
    a: FakeUpstream = fake_upstream_factory()
    b: FakeUpstream = fake_upstream_factory()
    a.control(engine_metrics={"running": 3, "waiting": 1, "kv": 0.5})
    b.control(engine_metrics={"running": 5, "waiting": 0, "kv": 0.25})
    config = tmp_path / "routes.toml"
    config.write_text(f'[[upstreams]]\nname = "pool"\nurls = ["{a.base_url}", "{b.base_url}"]\n'
                      'engine_metrics = "vllm"\nbatch_priority = 7\n')
    server = server_factory(upstream=None, args=["--config", str(config)])

    def engine(name: str, replica: FakeUpstream) -> float | None:
        return metric(server, name, upstream="pool", replica=replica.base_url)

    wait_until(lambda: engine("batchgate_engine_running", a) == 3 and engine("batchgate_engine_running", b) == 5,
               "the engines' running requests never showed")
    assert engine("batchgate_engine_waiting", a) == 1 and engine("batchgate_engine_kv_cache_usage", b) == 0.25
    page = raw(server.url, "GET", "/ui/fragments/upstreams", api_key=None).body.decode()
    assert "engine: 3 running, 1 waiting" in page and "engine: 5 running, 0 waiting" in page

    a.control(engine_metrics={"running": 0, "waiting": 12, "kv": 0.9})
    wait_until(lambda: engine("batchgate_engine_waiting", a) == 12, "the new reading never showed")

    client = server.client()
    batch = wait_for_batch(client, submit_batch(client, [chat_line(f"c{i}") for i in range(40)]).id, timeout=120)
    assert batch.request_counts is not None and batch.request_counts.completed == 40
    sent = [a.stats()["priorities"], b.stats()["priorities"]]
    assert set(sent[0]) | set(sent[1]) == {"7"} and sent[0].get("7", 0) + sent[1].get("7", 0) == 40
