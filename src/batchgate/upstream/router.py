"""Which executor serves which model: exact names or glob patterns, first match wins."""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgate.domain.batch import ENDPOINTS
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.upstream.executor import Executor, ModelUnavailable
from batchgate.upstream.gate import Gate
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.limiter import AdaptiveLimiter

ADAPTIVE_CAP = 4096  # upper bound for the adaptive window when no limit is configured
LOCAL_CAP = 64  # the in-process engine queues internally; enough in flight to fill its model batches
INITIAL_WINDOW = 512  # requests in flight before the first answer: the window grows x5 per round trip from here


@dataclass
class Route:
    name: str
    patterns: tuple[str, ...]
    executor: Executor
    max_concurrency: int
    endpoints: tuple[str, ...] | None = None  # the routing file's `endpoints`: only these (None: what it serves)
    gate: Gate = field(init=False)

    def __post_init__(self) -> None:
        initial = min(INITIAL_WINDOW, self.max_concurrency)
        self.gate = Gate(AdaptiveLimiter(max_limit=self.max_concurrency, initial=initial))

    def matches(self, model: str) -> bool:
        return any(p == model or fnmatch.fnmatchcase(model, p) for p in self.patterns)


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
        where = f"upstream '{route.name}'" if isinstance(route.executor, HttpUpstream) else "local engine"
        serves = f"it serves {', '.join(served)}" if served else "it serves no batch endpoint"
        return f"Model '{model}' ({where}) does not serve {endpoint}; {serves}."

    def shortfall(self) -> int:
        """Requests the worker should add so every gate has a full window waiting behind what is in flight
        (the window can grow fivefold in one round trip; the requests must already be there)."""
        total = 0
        for r in self.routes:
            lim = r.gate.limiter
            total += max(0, lim.capacity - lim.inflight) + lim.capacity - r.gate.waiting
        return total

    def list_models(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.routes:
            for m in r.executor.list_models():
                seen.setdefault(m)
            for p in r.patterns:
                if not any(ch in p for ch in "*?["):
                    seen.setdefault(p)
        return list(seen)

    async def start(self) -> None:
        for r in self.routes:
            await r.executor.start()

    async def close(self) -> None:
        for r in self.routes:
            await r.executor.close()


def build_router(settings: Settings) -> Router:
    """Routes from --config, else one route for --upstream, else the local in-process engine."""
    if settings.config is not None:
        return Router([_route_from_config(settings, u, i) for i, u in enumerate(_read_config(settings.config))])
    if settings.upstream:
        cap = settings.upstream_concurrency or ADAPTIVE_CAP
        http = HttpUpstream(
            "default", _check_url(settings.upstream, "--upstream"), settings.upstream_api_key, cap,
            settings.connect_timeout,
        )
        return Router([Route("default", ("*",), http, cap)])
    return Router([Route("local", ("*",), _local_engine({}), LOCAL_CAP)])


def _read_config(path: Path) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    ups = data.get("upstreams")
    if not isinstance(ups, list) or not ups or not all(isinstance(u, dict) for u in ups):
        raise ConfigError(f"{path}: expected one or more [[upstreams]] tables")
    return ups


def _route_from_config(settings: Settings, u: dict[str, Any], i: int) -> Route:
    name = str(u.get("name") or f"upstream{i}")
    kind = u.get("type", "http")
    models = u.get("models", ["*"])
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"upstream {name!r}: models must be a list of names or glob patterns")
    limit = u.get("max_concurrency", settings.upstream_concurrency or ADAPTIVE_CAP)
    if not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"upstream {name!r}: max_concurrency must be a positive integer")
    endpoints = u.get("endpoints")
    if endpoints is not None and (
        not isinstance(endpoints, list) or not endpoints or not all(e in ENDPOINTS for e in endpoints)
    ):
        raise ConfigError(
            f"upstream {name!r}: endpoints must be a non-empty list of batch endpoints ({', '.join(ENDPOINTS)})"
        )
    executor: Executor
    if kind == "local":
        executor = _local_engine(u)
        limit = min(limit, LOCAL_CAP)
    elif kind == "http":
        url = u.get("url")
        if not isinstance(url, str):
            raise ConfigError(f"upstream {name!r}: url is required")
        key = u.get("api_key")
        if key is None and isinstance(u.get("api_key_env"), str):
            key = os.environ.get(u["api_key_env"])
        executor = HttpUpstream(name, _check_url(url, f"upstream {name!r}"), key, limit, settings.connect_timeout)
    else:
        raise ConfigError(f"upstream {name!r}: unknown type {kind!r} (http or local)")
    return Route(name, tuple(models), executor, limit, tuple(endpoints) if endpoints is not None else None)


def _check_url(url: str, what: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{what}: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def _local_engine(opts: dict[str, Any]) -> Executor:
    from batchgate.engine.local import LocalEngine

    return LocalEngine(**{k: v for k, v in opts.items() if k in ("chat_slots", "embed_batch_size")})
