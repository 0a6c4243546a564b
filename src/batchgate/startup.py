"""What `serve` and `worker` do before they run: check that the database and the object storage answer, and say
in one line what they run on.

The check opens the store (applying migrations) and the object storage once and closes them again, before the
server binds its port: an unreachable PostgreSQL or S3 then ends the command with the adapter's one line
(`BackendUnavailable`, the URL with its password masked, and why) instead of a traceback from inside uvicorn's
lifespan. It costs one connection to each, at start-up only."""

from __future__ import annotations

from batchgate import __version__
from batchgate.blobs.factory import make_blobs
from batchgate.logs import redact_url
from batchgate.settings import Settings
from batchgate.store.factory import make_store
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.router import ADAPTIVE_CAP, Route, Router

SEP = " · "


async def check_backends(settings: Settings) -> bool:
    """Open and close the store and the object storage (raises BackendUnavailable); True if API keys exist."""
    store = make_store(settings)
    await store.open()
    try:
        has_keys = await store.has_keys()
        blobs = make_blobs(settings)
        await blobs.open()
        await blobs.close()
    finally:
        await store.close()
    return has_keys


def public_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def summary(settings: Settings, router: Router, serving: bool) -> str:
    """One line: version, address, store, file storage, routes, dashboard. Never a password or a key."""
    head = f"batchgate {__version__} "
    head += f"on {public_url(settings)}/v1" if serving else "worker"
    parts = [head, "store " + _store(settings), "files " + _files(settings), "models " + _routes(router)]
    if serving:
        if not settings.worker:
            parts.append("no worker (run `batchgate worker`)")
        parts.append(f"dashboard {public_url(settings)}/ui")
    return SEP.join(parts)


def _store(settings: Settings) -> str:
    if settings.database_url is None:
        return f"sqlite {settings.db_path}"
    return redact_url(settings.database_url)


def _files(settings: Settings) -> str:
    if settings.storage_url is None:
        return str(settings.blob_dir)
    at = f" at {redact_url(settings.s3_endpoint_url)}" if settings.s3_endpoint_url else ""
    return settings.storage_url + at


def _routes(router: Router) -> str:
    # The local engine's lanes are routes over one executor: shown as one entry, where the first of them is.
    groups: dict[int, list[Route]] = {}
    for r in router.routes:
        groups.setdefault(id(r) if isinstance(r.executor, HttpUpstream) else id(r.executor), []).append(r)
    return ", ".join(f"{','.join(g[0].patterns)} -> {_target(g)}" for g in groups.values())


def _target(routes: list[Route]) -> str:
    route = routes[0]
    if not isinstance(route.executor, HttpUpstream):
        return "local engine (" + ", ".join(f"{r.name} {r.max_concurrency}" for r in routes) + " in flight)"
    named = "" if route.name == "default" else route.name + " "
    each = " each" if len(route.pool.replicas) > 1 else ""
    capped = f" (at most {route.max_concurrency} in flight{each})" if route.max_concurrency != ADAPTIVE_CAP else ""
    urls = [e.base_url for e in route.replicas if isinstance(e, HttpUpstream)] or [route.executor.base_url]
    shown = redact_url(urls[0]) if len(urls) == 1 else "[" + ", ".join(redact_url(u) for u in urls) + "]"
    return named + shown + capped
