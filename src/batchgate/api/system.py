"""/health and /v1/models."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, principal


async def health(request: Request) -> Response:
    c = ctx(request)
    if not c.ready:
        return JSON({"status": "starting"}, status_code=503)
    return JSON({"status": "ok", "worker": c.worker is not None})


async def list_models(request: Request) -> Response:
    await principal(request)
    models = ctx(request).list_models()
    return JSON({
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": "batchgate"} for m in models],
    })


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/v1/models", list_models, methods=["GET"]),
]
