"""Errors under /ui become pages, not JSON envelopes: a login redirect for a missing or stale key, else an
error page with the status and message (unknown batch: 404; bad filter: 400; failed CSRF check: 403)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batchgate.dashboard import session
from batchgate.dashboard.render import Renderer
from batchgate.errors import BatchgateError, Unauthorized

TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
          413: "Too large", 429: "Too many requests"}


class ErrorPages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    def handlers(self) -> dict[type[Exception], object]:
        return {Unauthorized: self.login_needed, BatchgateError: self.error, HTTPException: self.http_error}

    async def login_needed(self, request: Request, exc: Exception) -> Response:
        if request.headers.get("hx-request"):
            # A poll from a page whose session ended: have htmx load the login page as a whole page.
            response: Response = Response(status_code=200, headers={"hx-redirect": "/ui/login"})
        else:
            response = RedirectResponse("/ui/login", status_code=303)
        if session.SESSION_COOKIE in request.cookies:
            session.logout(response)
        return response

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BatchgateError)
        return self._page(request, exc.status_code, exc.message)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return self._page(request, exc.status_code, message)

    def _page(self, request: Request, status: int, message: str) -> Response:
        return self._r.page(request, "error.html", {
            "status": status, "title": TITLES.get(status, "Error"), "message": message,
        }, status_code=status)
