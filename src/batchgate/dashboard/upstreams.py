"""The upstreams page: each upstream's live concurrency window, requests in flight and waiting, overloads and
no-queue latency, read from the in-process worker (its `WorkerView`); requests, error rate and mean latency
since start, read from the process's metrics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from batchgate.dashboard import session
from batchgate.dashboard.deps import services
from batchgate.dashboard.render import Renderer
from batchgate.domain.route_state import RouteState
from batchgate.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Traffic:
    requests: int  # answers (and failures to get one) since the process started
    errors: int  # every outcome but "ok": 4xx, 5xx, overloads, timeouts, dropped connections
    mean_latency_ms: float | None

    @property
    def error_percent(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0


def traffic(metrics: Metrics) -> dict[str, Traffic]:
    """Per upstream, from the counters the request executor keeps (prometheus_client's are thread-safe)."""
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    latency: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # [sum, count]
    for family in metrics.upstream_requests.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                requests[s.labels["upstream"]] += s.value
                if s.labels["outcome"] != "ok":
                    errors[s.labels["upstream"]] += s.value
    for family in metrics.upstream_latency.collect():
        for s in family.samples:
            if s.name.endswith("_sum"):
                latency[s.labels["upstream"]][0] += s.value
            elif s.name.endswith("_count"):
                latency[s.labels["upstream"]][1] += s.value
    out = {}
    for name, n in requests.items():
        total, count = latency[name]
        out[name] = Traffic(int(n), int(errors[name]), 1000 * total / count if count else None)
    return out


class UpstreamPages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    async def list(self, request: Request) -> Response:
        return await self._list(request, "upstreams.html")

    async def list_fragment(self, request: Request) -> Response:
        return await self._list(request, "_upstreams_table.html")

    async def _list(self, request: Request, template: str) -> Response:
        who = await session.principal(request)
        worker = services(request).worker
        rows: list[RouteState] | None = None
        note = "The worker runs in another process: its upstream windows are not visible from here."
        if worker is not None:
            try:
                rows = await worker.route_states()
            except TimeoutError:
                note = "The worker did not answer in time; retrying."
            else:
                if rows is None:
                    note = "The worker is not running."
        return self._r.page(request, template, {
            "nav": "upstreams", "rows": rows, "note": note, "traffic": traffic(services(request).metrics),
        }, who=who)
