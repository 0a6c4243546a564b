"""What the dashboard needs from the running app: the services the lifespan built (`app.state.ctx`).

Declared here as a protocol, so the dashboard depends on the services, not on the `api` package."""

from __future__ import annotations

from typing import Protocol, cast

from starlette.requests import Request

from batchgate.metrics import Metrics
from batchgate.services.auth import AuthService
from batchgate.services.batches import BatchService
from batchgate.services.files import FileService
from batchgate.services.projects import ProjectService
from batchgate.services.webhooks import WebhookService
from batchgate.services.worker_view import WorkerView
from batchgate.settings import Settings


class Services(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def auth(self) -> AuthService: ...
    @property
    def files(self) -> FileService: ...
    @property
    def batches(self) -> BatchService: ...
    @property
    def webhooks(self) -> WebhookService: ...
    @property
    def projects(self) -> ProjectService: ...
    @property
    def worker(self) -> WorkerView | None: ...
    @property
    def metrics(self) -> Metrics: ...


def services(request: Request) -> Services:
    return cast(Services, request.app.state.ctx)
