"""Prometheus metrics: one registry per app, shared by the API and the worker thread of the same process.

Counters and histograms are written where things happen (the request executor, the worker); gauges that
describe live state (each upstream's window, in flight, waiting; batches by status) are read when scraped,
so they can never drift from the objects they describe."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from batchgate.domain.batch import Usage
from batchgate.domain.status import BatchStatus

if TYPE_CHECKING:
    from batchgate.upstream.router import Route

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Model names come from batch input; past this many distinct ones, new names are counted as "other" so a
# stream of made-up model names cannot grow the exposition without bound.
MAX_MODELS = 100
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.upstream_requests = Counter(
            "batchgate_upstream_requests", "Requests sent to upstreams, by outcome "
            "(ok, http_4xx, http_5xx, http_other, overloaded, timeout, connection, model_unavailable).",
            ["endpoint", "model", "upstream", "outcome"], registry=r,
        )
        self.upstream_latency = Histogram(
            "batchgate_upstream_request_duration_seconds", "Seconds from sending a request to its HTTP answer.",
            ["upstream"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.retries = Counter(
            "batchgate_upstream_retries", "Requests sent again after overload, an error status, a timeout or a "
            "dropped connection.", ["upstream", "reason"], registry=r,
        )
        self.tokens = Counter(
            "batchgate_tokens", "Tokens processed, from the usage of successful responses.",
            ["model", "kind"], registry=r,
        )
        self.results = Counter(
            "batchgate_request_results", "Batch requests finished, by whether they went to the output file.",
            ["endpoint", "result"], registry=r,
        )
        self.chunks_claimed = Gauge(
            "batchgate_chunks_claimed", "Chunks this process's worker holds right now.", registry=r
        )
        self.batches = Gauge("batchgate_batches", "Batches in each status (all projects).", ["status"], registry=r)
        self._routes = _RouteCollector()
        r.register(self._routes)
        self._models: set[str] = set()
        # Label lookups cost more than the increments: the hot path (every upstream request) reuses children.
        self._children: dict[tuple[object, ...], Any] = {}
        self._retried = 0

    # -- written by the worker ---------------------------------------------------------------------------
    def watch_routes(self, routes: Sequence[Route]) -> None:
        """The worker's routes: their gates are read at every scrape."""
        self._routes.routes = list(routes)

    def count_chunks(self, count: Callable[[], int]) -> None:
        self.chunks_claimed.set_function(count)

    def model(self, name: object) -> str:
        if not isinstance(name, str):
            return "unknown"
        if name in self._models:
            return name
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(name)
        return name

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def sent(self, endpoint: str, model: str, upstream: str, outcome: str, seconds: float | None = None) -> None:
        self._child(self.upstream_requests, endpoint, model, upstream, outcome).inc()
        if seconds is not None:
            self._child(self.upstream_latency, upstream).observe(seconds)

    def retried(self, upstream: str, reason: str) -> None:
        self._child(self.retries, upstream, reason).inc()
        self._retried += 1

    def retry_count(self) -> int:
        """Retries sent by this process so far, every upstream and reason together (for `run`'s progress)."""
        return self._retried

    def finished(self, endpoint: str, model: str, ok: bool, usage: Usage) -> None:
        self._child(self.results, endpoint, "ok" if ok else "error").inc()
        if usage.input_tokens:
            self._child(self.tokens, model, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            self._child(self.tokens, model, "output").inc(usage.output_tokens)

    # -- read by GET /metrics ----------------------------------------------------------------------------
    def render(self, batch_counts: Mapping[BatchStatus, int]) -> bytes:
        """The exposition text; `batch_counts` is read from the store for each scrape."""
        for status in BatchStatus:
            self.batches.labels(status.value).set(batch_counts.get(status, 0))
        return generate_latest(self.registry)


class _RouteCollector(Collector):
    """Each upstream's adaptive window, requests in flight and requests waiting, read live from its gate."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def collect(self) -> Iterable[Metric]:
        window = GaugeMetricFamily("batchgate_upstream_concurrency_window",
                                   "Requests the adaptive limiter lets in flight now.", labels=["upstream"])
        cap = GaugeMetricFamily("batchgate_upstream_concurrency_max",
                                "Configured upper bound of the concurrency window.", labels=["upstream"])
        inflight = GaugeMetricFamily("batchgate_upstream_inflight", "Requests in flight to the upstream.",
                                     labels=["upstream"])
        waiting = GaugeMetricFamily("batchgate_upstream_waiting",
                                    "Requests queued at the upstream's gate for a free slot.", labels=["upstream"])
        down = GaugeMetricFamily("batchgate_upstream_down",
                                 "1 while every replica of the upstream is down and dispatch to it is paused.",
                                 labels=["upstream"])
        up = GaugeMetricFamily("batchgate_replica_up", "1 while the replica is in its upstream's pool, 0 while it "
                               "is taken out and probed.", labels=["upstream", "replica"])
        r_window = GaugeMetricFamily("batchgate_replica_concurrency_window",
                                     "Requests the replica's adaptive limiter lets in flight now.",
                                     labels=["upstream", "replica"])
        r_inflight = GaugeMetricFamily("batchgate_replica_inflight", "Requests in flight to the replica.",
                                       labels=["upstream", "replica"])
        e_running = GaugeMetricFamily("batchgate_engine_running", "Requests the replica's engine says it runs "
                                      "(its own metrics, where the route reads them: engine_metrics).",
                                      labels=["upstream", "replica"])
        e_waiting = GaugeMetricFamily("batchgate_engine_waiting", "Requests the replica's engine says wait in its "
                                      "own queue (engine_metrics).", labels=["upstream", "replica"])
        e_kv = GaugeMetricFamily("batchgate_engine_kv_cache_usage", "Fraction of its KV cache the replica's engine "
                                 "says is in use, 0 to 1 (vLLM, SGLang).", labels=["upstream", "replica"])
        for route in list(self.routes):  # the list is replaced, never mutated, by the worker thread
            pool = route.gate.pool
            window.add_metric([route.name], pool.capacity)
            cap.add_metric([route.name], pool.max_limit)
            inflight.add_metric([route.name], pool.inflight)
            waiting.add_metric([route.name], route.gate.waiting + pool.held)
            down.add_metric([route.name], 1 if pool.is_down else 0)
            for replica in list(pool.replicas):
                labels = [route.name, replica.name]
                up.add_metric(labels, 1 if replica.up else 0)
                r_window.add_metric(labels, replica.limiter.capacity)
                r_inflight.add_metric(labels, replica.limiter.inflight)
                load = replica.engine_load
                if load is not None:
                    e_running.add_metric(labels, load.running)
                    e_waiting.add_metric(labels, load.waiting)
                    if load.kv_usage is not None:
                        e_kv.add_metric(labels, load.kv_usage)
        return [window, cap, inflight, waiting, down, up, r_window, r_inflight, e_running, e_waiting, e_kv]

    def describe(self) -> Iterable[Metric]:
        return []
