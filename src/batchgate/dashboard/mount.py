"""The dashboard as one Mount at /ui: pages, live fragments (polled by htmx), form posts and static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from batchgate.dashboard.batches import BatchPages
from batchgate.dashboard.errors import ErrorPages
from batchgate.dashboard.files import FilePages
from batchgate.dashboard.login import LoginPages
from batchgate.dashboard.projects import ProjectPages
from batchgate.dashboard.render import Renderer
from batchgate.dashboard.upstreams import UpstreamPages

STATIC = Path(__file__).parent / "static"


def dashboard() -> Mount:
    r = Renderer()
    login, batches, files, ups = LoginPages(r), BatchPages(r), FilePages(r), UpstreamPages(r)
    projects = ProjectPages(r)
    handlers: dict[Any, Any] = ErrorPages(r).handlers()
    return Mount("/ui", routes=[
        Route("/", batches.index, methods=["GET"]),
        Route("/login", login.form, methods=["GET"]),
        Route("/login", login.submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/batches", batches.list, methods=["GET"]),
        Route("/batches/{batch_id}", batches.detail, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", batches.cancel, methods=["POST"]),
        Route("/batches/{batch_id}/pause", batches.pause, methods=["POST"]),
        Route("/batches/{batch_id}/resume", batches.resume, methods=["POST"]),
        Route("/batches/{batch_id}/retry", batches.retry, methods=["POST"]),
        Route("/files", files.list, methods=["GET"]),
        Route("/files/{file_id}/content", files.download, methods=["GET"]),
        Route("/upstreams", ups.list, methods=["GET"]),
        Route("/projects", projects.list, methods=["GET"]),
        Route("/fragments/batches", batches.list_fragment, methods=["GET"]),
        Route("/fragments/batches/{batch_id}", batches.detail_fragment, methods=["GET"]),
        Route("/fragments/upstreams", ups.list_fragment, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ], middleware=[Middleware(ExceptionMiddleware, handlers=handlers)])
