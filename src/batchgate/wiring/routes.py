"""Routes from Settings and the routing file (`--config`): the one place that knows every kind of executor, the
HTTP upstream and the in-process engine, so `upstream/` never needs to know the engine exists."""

from __future__ import annotations

import os
from collections.abc import Mapping

from batchgate.engine.local import LocalEngine
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.upstream.engine_poll import MetricsMode
from batchgate.upstream.executor import Executor
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.router import ADAPTIVE_CAP, Route, Router
from batchgate.wiring.route_config import LocalRouteConfig, RouteConfig, read_routing_file, url_problem


def build_router(settings: Settings, environ: Mapping[str, str] | None = None) -> Router:
    """Routes from --config, else one route for --upstream, else the local in-process engine. `environ` answers
    the routing file's `api_key_env` (default: this process's environment)."""
    if settings.config is not None:
        env = os.environ if environ is None else environ
        return Router([_route(settings, c, env) for c in read_routing_file(settings.config, env)])
    if settings.upstream:
        check_routing(settings)
        cap = settings.upstream_concurrency or ADAPTIVE_CAP
        http = HttpUpstream("default", settings.upstream.rstrip("/"), settings.upstream_api_key, cap,
                            settings.connect_timeout, settings.upstream_messages)
        return Router([Route("default", ("*",), http, cap)])
    engine = LocalEngine()
    return Router([Route("local", ("*",), engine, engine.window)])


def check_routing(settings: Settings) -> None:
    """Raise ConfigError as build_router would, without building anything (`run` checks before making its state)."""
    if settings.config is not None:
        read_routing_file(settings.config, os.environ)
    elif settings.upstream and (problem := url_problem(settings.upstream)):
        raise ConfigError(f"--upstream: {problem}")


def _route(settings: Settings, config: RouteConfig, environ: Mapping[str, str]) -> Route:
    limit = config.max_concurrency or settings.upstream_concurrency or ADAPTIVE_CAP
    executors: list[Executor]
    signals: MetricsMode = "off"
    metrics_url: str | None = None
    neighbourly = False
    if isinstance(config, LocalRouteConfig):
        engine = LocalEngine(**{k: v for k, v in (("chat_slots", config.chat_slots),
                                                 ("embed_batch_size", config.embed_batch_size)) if v is not None})
        executors = [engine]
        limit = min(config.max_concurrency or engine.window, engine.window)
    else:
        key = config.key(environ)
        messages = config.messages or settings.upstream_messages
        executors = [HttpUpstream(config.name, url, key, limit, settings.connect_timeout, messages,
                                  config.batch_priority)
                     for url in config.base_urls]
        signals, metrics_url = config.metrics_mode, config.engine_metrics_url
        neighbourly = config.neighbourly
    endpoints = tuple(config.endpoints) if config.endpoints is not None else None
    return Route(config.name, tuple(config.models), executors[0], limit, endpoints, tuple(executors),
                 settings.prefix_affinity, signals, metrics_url, neighbourly)
