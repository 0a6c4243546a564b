"""Which executor serves which model: exact names or glob patterns, first match wins. The routes are built from
Settings and the routing file in `wiring/routes.py`, the one place that knows every kind of executor."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgate.domain.batch import ENDPOINTS
from batchgate.domain.route_state import ReplicaState, RouteState
from batchgate.upstream.engine_poll import MetricsMode
from batchgate.upstream.executor import Executor, ModelUnavailable
from batchgate.upstream.gate import Gate
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.limiter import AdaptiveLimiter
from batchgate.upstream.pool import Pool, Replica

ADAPTIVE_CAP = 4096  # upper bound for the adaptive window when no limit is configured
INITIAL_WINDOW = 8  # requests in flight before the first answer: the window doubles per round trip from here


@dataclass
class Route:
    """A pool of replicas serving the same models: `executor`, or each of `replicas` when given (the first of them
    is then `executor`, which answers for the route: its models and endpoints). Each replica has its own window of
    `max_concurrency` at most, and its own health; one gate admits for all of them. A `fixed` route's windows are
    `max_concurrency` from the start and never move (an engine whose concurrency is known: the local engine's lanes).
    `serves`, when given, is a test after the patterns (a model matches both): the models of one such lane."""

    name: str
    patterns: tuple[str, ...]
    executor: Executor
    max_concurrency: int
    endpoints: tuple[str, ...] | None = None  # the routing file's `endpoints`: only these (None: what it serves)
    replicas: tuple[Executor, ...] = ()
    affinity: bool = True  # prefix-cache affinity between the replicas (Settings.prefix_affinity)
    engine_metrics: MetricsMode = "off"  # the routing file's `engine_metrics`: which engine signals to poll
    engine_metrics_url: str | None = None  # its `engine_metrics_url` (None: /metrics beside each replica's /v1)
    neighbourly: bool = False  # its `neighbourly`: the windows yield to the engine's other traffic
    fixed: bool = False
    serves: Callable[[str], bool] | None = None
    gate: Gate = field(init=False)

    def __post_init__(self) -> None:
        executors = self.replicas or (self.executor,)
        self.executor = executors[0]
        pool = Pool(self.name, [Replica(replica_name(e), e, self._limiter()) for e in executors],
                    affinity=self.affinity)
        self.gate = Gate(pool)

    def _limiter(self) -> AdaptiveLimiter:
        top = self.max_concurrency
        if self.fixed:
            return AdaptiveLimiter(max_limit=top, initial=top, min_limit=top)
        return AdaptiveLimiter(max_limit=top, initial=min(INITIAL_WINDOW, top), neighbourly=self.neighbourly)

    @property
    def pool(self) -> Pool:
        return self.gate.pool

    def matches(self, model: str) -> bool:
        if not any(p == model or fnmatch.fnmatchcase(model, p) for p in self.patterns):
            return False
        return self.serves is None or self.serves(model)

    def shortfall(self) -> int:
        """Requests this route's gate is short of (see Router.shortfall)."""
        lim = self.gate.limiter
        return max(0, 2 * lim.capacity - lim.inflight - self.gate.waiting - self.pool.held)

    def state(self, now: float) -> RouteState:
        """Call on the loop that sends through this route (where its gate and limiters change)."""
        pool = self.gate.pool
        rtt = pool.base_rtt
        mono = time.monotonic()
        replicas = tuple(ReplicaState(r.name, r.up, r.limiter.capacity, r.limiter.inflight, len(r.held),
                                      None if r.up else mono - r.down_since, r.last_error,
                                      None if r.engine_load is None else r.engine_load.running,
                                      None if r.engine_load is None else r.engine_load.waiting)
                         for r in pool.replicas)
        down = None if pool.down_since is None else mono - pool.down_since
        return RouteState(self.name, self.patterns, pool.capacity, pool.max_limit, pool.inflight,
                          self.gate.waiting + pool.held, pool.overloads, rtt * 1000 if rtt > 0 else None, replicas,
                          down)


def replica_name(executor: Executor) -> str:
    """A replica's label in logs, metrics and the dashboard: its base URL, or the executor's name."""
    url = getattr(executor, "base_url", None)
    return url if isinstance(url, str) else executor.name


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._resolved: dict[str, Route | None] = {}

    def resolve(self, model: str) -> Route | None:
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = next((r for r in self.routes if r.matches(model)), None)
        if len(self._resolved) < 10_000:  # one batch has one model; the cache stays tiny
            self._resolved[model] = found
        return found

    def check_model(self, model: str) -> str | None:
        """None if `model` can be served, else a message saying why not."""
        route = self.resolve(model)
        if route is None:
            return f"The provided model '{model}' is not supported by the Batch API."
        try:
            route.executor.check_model(model)
        except ModelUnavailable as e:
            return str(e)
        return None

    def check_endpoint(self, model: str, endpoint: str) -> str | None:
        """None if the route of `model` (one check_model accepts) serves `endpoint`, else a message saying why not."""
        route = self.resolve(model)
        if route is None:
            return None  # check_model has already said so
        served = route.executor.endpoints(model)
        if route.endpoints is not None:
            served = tuple(e for e in served if e in route.endpoints)
        if endpoint in served:
            return None
        if endpoint in ENDPOINTS:  # an OpenAI batch: name only what POST /v1/batches takes, not /v1/messages
            served = tuple(e for e in served if e in ENDPOINTS)
        where = f"upstream '{route.name}'" if isinstance(route.executor, HttpUpstream) else "local engine"
        serves = f"it serves {', '.join(served)}" if served else "it serves no batch endpoint"
        return f"Model '{model}' ({where}) does not serve {endpoint}; {serves}."

    def shortfall(self) -> int:
        """Requests the worker should add so that every gate has what it can start within about one round trip:
        a window in flight and a window waiting behind it (in startup the window doubles per round trip, and
        in steady state a round trip's answers free a window's worth of slots). No more: what a worker has
        claimed but not started is what other workers can't take, and what a crash leaves to its lease. A route
        with more than that waiting does not hide another route's need."""
        return sum(r.shortfall() for r in self.routes)

    def list_models(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.routes:
            for m in r.executor.list_models():
                seen.setdefault(m)
            for p in r.patterns:
                if not any(ch in p for ch in "*?["):
                    seen.setdefault(p)
        return list(seen)

    def down(self) -> list[Route]:
        """The routes whose every replica is down (dispatch to them is paused)."""
        return [r for r in self.routes if r.pool.is_down]

    def executors(self) -> list[Executor]:
        """Every executor once (the local engine's lanes are routes that share one)."""
        seen: dict[int, Executor] = {}
        for r in self.routes:
            for replica in r.pool.replicas:
                if replica.executor is not None:
                    seen.setdefault(id(replica.executor), replica.executor)
        return list(seen.values())

    async def start(self) -> None:
        for executor in self.executors():
            await executor.start()

    async def close(self) -> None:
        for r in self.routes:
            await r.pool.close()
        for executor in self.executors():
            await executor.close()

