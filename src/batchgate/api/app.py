"""The app factory: create_app(settings) -> an ASGI app whose lifespan owns every resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Route

from batchgate.api import (
    admin,
    batches,
    events,
    files,
    message_batches,
    metrics,
    openapi,
    projects,
    system,
    uploads,
    webhooks,
)
from batchgate.api.context import Context
from batchgate.api.errors import on_batchgate_error, on_http_error, on_unexpected
from batchgate.api.requestid import RequestIdMiddleware
from batchgate.dashboard.mount import dashboard
from batchgate.errors import BatchgateError
from batchgate.metrics import Metrics
from batchgate.runtime import settle_gc
from batchgate.services.message_batches import MessageBatchService
from batchgate.services.projects import ProjectService
from batchgate.services.ratelimit import Rate, RateLimiter
from batchgate.services.webhooks import WebhookService
from batchgate.settings import Settings
from batchgate.wiring.parts import running_parts
from batchgate.wiring.worker_thread import WorkerThread


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        metrics = Metrics()  # one registry: the worker thread counts into what GET /metrics serves
        worker = WorkerThread(settings, metrics) if settings.worker else None
        wake = worker.notify if worker is not None else None
        async with running_parts(settings, with_worker=False, metrics=metrics, wake=wake) as p:
            if worker is not None:
                await worker.start()
            limiter = RateLimiter({
                "uploads": Rate(settings.upload_rate_limit, 60.0),
                "batches": Rate(settings.batch_rate_limit, 3600.0),
            })
            app.state.ctx = Context(settings, p.auth, p.files, p.uploads, p.batches, p.router.list_models, worker,
                                    limiter, ready=True, metrics=p.metrics,
                                    webhooks=WebhookService(p.store, p.batches, settings.webhook_allow_private),
                                    projects=ProjectService(p.store),
                                    message_batches=MessageBatchService(p.store, p.files, settings.window_scale, wake))
            settle_gc()
            try:
                yield
            finally:
                if worker is not None:
                    await worker.stop()

    app = Starlette(
        routes=[*system.routes, *openapi.routes, *files.routes, *uploads.routes, *batches.routes, *admin.routes,
                *projects.routes, *events.routes, *metrics.routes, *webhooks.routes, *message_batches.routes,
                Route("/", lambda request: RedirectResponse("/ui/"), methods=["GET"]),  # a browser at the bare address
                Route("/ui", lambda request: RedirectResponse("/ui/"), methods=["GET"]), dashboard()],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            BatchgateError: on_batchgate_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )
    # An unknown path is a 404 in the error envelope, as OpenAI answers it: never a redirect to a path
    # without its trailing slash (`/v1/files/x/` is not `/v1/files/x`).
    app.router.redirect_slashes = False
    return app
