"""Routes from Settings and the routing file (`--config`): the one place that knows every kind of executor, the
HTTP upstream and the in-process engine, so `upstream/` never needs to know the engine exists."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from batchgate.domain.batch import LINE_ENDPOINTS
from batchgate.engine.local import LocalEngine
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.upstream.executor import Executor
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.messages import MESSAGES_MODES
from batchgate.upstream.router import ADAPTIVE_CAP, Route, Router

LOCAL_CAP = 64  # the in-process engine queues internally; enough in flight to fill its model batches


def build_router(settings: Settings) -> Router:
    """Routes from --config, else one route for --upstream, else the local in-process engine."""
    if settings.config is not None:
        return Router([_route_from_config(settings, u, i) for i, u in enumerate(_read_config(settings.config))])
    if settings.upstream:
        cap = settings.upstream_concurrency or ADAPTIVE_CAP
        http = HttpUpstream(
            "default", _check_url(settings.upstream, "--upstream"), settings.upstream_api_key, cap,
            settings.connect_timeout, settings.upstream_messages,
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
        not isinstance(endpoints, list) or not endpoints or not all(e in LINE_ENDPOINTS for e in endpoints)
    ):
        raise ConfigError(
            f"upstream {name!r}: endpoints must be a non-empty list of batch endpoints ({', '.join(LINE_ENDPOINTS)})"
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
        messages = u.get("messages", settings.upstream_messages)
        if messages not in MESSAGES_MODES:
            raise ConfigError(f"upstream {name!r}: messages must be \"native\" (the upstream serves /v1/messages) or "
                              "\"translate\" (Anthropic Messages lines are sent as chat completions)")
        executor = HttpUpstream(name, _check_url(url, f"upstream {name!r}"), key, limit, settings.connect_timeout,
                                messages)
    else:
        raise ConfigError(f"upstream {name!r}: unknown type {kind!r} (http or local)")
    return Route(name, tuple(models), executor, limit, tuple(endpoints) if endpoints is not None else None)


def _check_url(url: str, what: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{what}: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def _local_engine(opts: dict[str, Any]) -> Executor:
    return LocalEngine(**{k: v for k, v in opts.items() if k in ("chat_slots", "embed_batch_size")})
