"""What route handlers reach through `request.app.state.ctx`: the services, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchgate.services.auth import AuthService, Principal
from batchgate.services.batches import BatchService
from batchgate.services.files import FileService
from batchgate.services.uploads import UploadService
from batchgate.settings import Settings
from batchgate.upstream.router import Router
from batchgate.worker.runner import Worker


@dataclass
class Context:
    settings: Settings
    auth: AuthService
    files: FileService
    uploads: UploadService
    batches: BatchService
    router: Router
    worker: Worker | None
    ready: bool = False


def ctx(request: Request) -> Context:
    c: Context = request.app.state.ctx
    return c


async def principal(request: Request) -> Principal:
    return await ctx(request).auth.authenticate(request.headers.get("authorization"))


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
