"""GET /metrics: the Prometheus exposition of this process's metrics and of batches by status.

Open without a key when the server is bound to loopback (or with BATCHGATE_METRICS_PUBLIC); on any other
address it needs an admin key, like the rest of the operator's view of every project."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import ctx
from batchgate.metrics import CONTENT_TYPE


async def metrics(request: Request) -> Response:
    c = ctx(request)
    opened = c.settings.metrics_public or c.settings.is_loopback()
    await c.auth.operator_view(request.headers.get("authorization"), opened)
    return Response(c.metrics.render(await c.batches.count_by_status()), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]
