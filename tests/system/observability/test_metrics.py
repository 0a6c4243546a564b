"""GET /metrics: the exposition parses, and its counters move when a batch runs; who may read it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, create_key, run_cli
from helpers import (
    CHAT,
    CHAT_MODEL,
    assert_envelope,
    chat_line,
    raw,
    run_batch,
    submit_batch,
    unique,
    wait_for_batch,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families

from batchgate.metrics import Metrics
from batchgate.upstream.executor import UpstreamResponse
from batchgate.worker.execute import outcome

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: BatchgateServer, api_key: str | None = None) -> Samples:
    r = raw(server.url, "GET", "/metrics", api_key=api_key)
    assert r.status == 200, r.body[:500]
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.body.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def server(module_server_factory: Any) -> Iterator[BatchgateServer]:
    yield module_server_factory(env={"BATCHGATE_MAX_ATTEMPTS": "3"})


def test_metrics_move_after_a_batch(server: BatchgateServer) -> None:
    before = scrape(server)
    client = server.client()
    ok = [chat_line(unique()) for _ in range(4)]
    flaky = chat_line(unique(), x_fake={"fail_times": 1, "status": 500})
    bad = chat_line(unique(), x_fake={"status": 400, "body": {"error": {"message": "no", "type": "x"}}})
    batch = run_batch(client, [*ok, flaky, bad])
    assert batch.status == "completed"
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    sent = {"endpoint": CHAT, "model": CHAT_MODEL, "upstream": "default"}
    assert delta("batchgate_upstream_requests_total", outcome="ok", **sent) == 5
    assert delta("batchgate_upstream_requests_total", outcome="http_5xx", **sent) == 1
    assert delta("batchgate_upstream_requests_total", outcome="http_4xx", **sent) == 1
    assert delta("batchgate_upstream_retries_total", upstream="default", reason="http_5xx") == 1
    assert delta("batchgate_upstream_request_duration_seconds_count", upstream="default") == 7
    assert delta("batchgate_upstream_request_duration_seconds_bucket", upstream="default", le="+Inf") == 7
    assert delta("batchgate_request_results_total", endpoint=CHAT, result="ok") == 5
    assert delta("batchgate_request_results_total", endpoint=CHAT, result="error") == 1
    assert delta("batchgate_tokens_total", model=CHAT_MODEL, kind="input") > 0
    assert delta("batchgate_tokens_total", model=CHAT_MODEL, kind="output") > 0
    assert delta("batchgate_batches", status="completed") == 1
    # Live gauges: the upstream's window and what is in flight or waiting now (nothing: the batch is done).
    assert value(after, "batchgate_upstream_concurrency_window", upstream="default") >= 1
    assert value(after, "batchgate_upstream_concurrency_max", upstream="default") == 4096
    assert value(after, "batchgate_upstream_inflight", upstream="default") == 0
    assert value(after, "batchgate_upstream_waiting", upstream="default") == 0
    assert ("batchgate_chunks_claimed", frozenset()) in after
    assert {ls for n, ls in after if n == "batchgate_batches"} == {
        frozenset({("status", s)}) for s in
        ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")
    }


def test_in_flight_gauges_while_requests_run(server: BatchgateServer) -> None:
    client = server.client()
    lines = [chat_line(unique(), x_fake={"latency": 1.5}) for _ in range(3)]
    batch = submit_batch(client, lines)
    wait_until(client, batch.id, lambda b: b.status == "in_progress")
    for _ in range(40):
        samples = scrape(server)
        if value(samples, "batchgate_upstream_inflight", upstream="default") == 3:
            break
        time.sleep(0.025)
    assert value(samples, "batchgate_upstream_inflight", upstream="default") == 3
    assert value(samples, "batchgate_chunks_claimed") >= 1
    assert value(samples, "batchgate_batches", status="in_progress") >= 1
    assert wait_for_batch(client, batch.id).status == "completed"


def test_metrics_need_an_admin_key_off_loopback(module_server_factory: Any, tmp_path_factory: Any) -> None:
    data: Path = tmp_path_factory.mktemp("metrics-auth") / "data"
    user = create_key(data, "team")
    made = run_cli(["keys", "create", "--project", "ops", "--admin", "--data-dir", str(data)])
    assert made.returncode == 0, made.stderr
    admin = made.stdout.strip().splitlines()[-1]
    server: BatchgateServer = module_server_factory(host="0.0.0.0", data_dir=data)
    assert_envelope(raw(server.url, "GET", "/metrics", api_key=None), 401)
    assert_envelope(raw(server.url, "GET", "/metrics", api_key=user), 403)
    assert ("batchgate_chunks_claimed", frozenset()) in scrape(server, api_key=admin)
    server.stop()

    public: BatchgateServer = module_server_factory(host="0.0.0.0", data_dir=data,
                                                   env={"BATCHGATE_METRICS_PUBLIC": "true"})
    assert ("batchgate_chunks_claimed", frozenset()) in scrape(public, api_key=None)


def test_outcome_labels() -> None:
    def answer(status: int, retry_after: float | None = None) -> str:
        return outcome(UpstreamResponse(status, b"{}", None, retry_after))

    assert [answer(200), answer(204), answer(400), answer(404), answer(500), answer(302)] == [
        "ok", "ok", "http_4xx", "http_4xx", "http_5xx", "http_other"]
    assert answer(429) == "overloaded" and answer(503, 1.0) == "overloaded" and answer(503) == "http_5xx"


def test_model_labels_are_capped() -> None:
    m = Metrics()
    names = [m.model(f"model-{i}") for i in range(150)]
    assert names[:100] == [f"model-{i}" for i in range(100)] and set(names[100:]) == {"other"}
    assert m.model("model-3") == "model-3" and m.model(None) == "unknown"


def test_grafana_dashboard_uses_only_exposed_metrics(server: BatchgateServer) -> None:
    run_batch(server.client(), [chat_line(unique())])  # so every labelled series exists at least once
    exposed = {name for name, _ in scrape(server)}
    doc = json.loads((Path(__file__).parents[3] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bbatchgate_\w+", e)}
    assert used and used <= exposed, used - exposed
    titles = " ".join(p["title"] for p in doc["panels"]).lower()
    for wanted in ("requests/s", "p50", "p99", "window", "in flight", "retries", "batches by status", "tokens/s"):
        assert wanted in titles, wanted
