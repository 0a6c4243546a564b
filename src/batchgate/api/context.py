"""What route handlers reach through `request.app.state.ctx`: the services, built once in the lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchgate.errors import PayloadTooLarge
from batchgate.metrics import Metrics
from batchgate.protocol import params
from batchgate.services.auth import AuthService, Principal
from batchgate.services.batches import BatchService
from batchgate.services.files import FileService
from batchgate.services.message_batches import MessageBatchService
from batchgate.services.projects import ProjectService
from batchgate.services.ratelimit import RateLimiter
from batchgate.services.uploads import UploadService
from batchgate.services.webhooks import WebhookService
from batchgate.services.worker_view import WorkerView
from batchgate.settings import Settings


@dataclass
class Context:
    settings: Settings
    auth: AuthService
    files: FileService
    uploads: UploadService
    batches: BatchService
    list_models: Callable[[], list[str]]  # what GET /v1/models lists: the models the routing file names
    worker: WorkerView | None  # the worker thread of this process, if it runs one
    limiter: RateLimiter
    webhooks: WebhookService = field(kw_only=True)
    projects: ProjectService = field(kw_only=True)
    message_batches: MessageBatchService = field(kw_only=True)
    ready: bool = False
    metrics: Metrics = field(default_factory=Metrics)


def ctx(request: Request) -> Context:
    c: Context = request.app.state.ctx
    return c


async def principal(request: Request, rate: str | None = None) -> Principal:
    """Who is calling (401 otherwise); with `rate`, also spend one request of that per-key rate limit."""
    c = ctx(request)
    who = await c.auth.authenticate(request.headers.get("authorization"))
    if rate is not None:
        c.limiter.hit(who.key_id or "anonymous", rate)
    return who


async def json_body(request: Request, limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object, read with a size cap (413 beyond it), never trusted to be small. `limit`: the
    cap of this route, if not the JSON bodies' (`max_json_bytes`)."""
    limit = limit or ctx(request).settings.max_json_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit for JSON requests.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit for JSON requests.")
    return params.parse_json_body(bytes(raw))


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
