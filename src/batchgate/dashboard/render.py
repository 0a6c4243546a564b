"""Rendering pages: one Jinja environment (autoescaped, strict about undefined names) and the values every
page gets: the CSRF token for its forms, who is logged in, which nav tab is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from batchgate.dashboard import session, views
from batchgate.services.auth import Principal

TEMPLATES = Path(__file__).parent / "templates"
POLL_SECONDS = 2
# Scripts, styles and forms only from us; never framed (the cancel button must not be clickjacked).
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class Renderer:
    def __init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
        )
        env.filters.update(
            when=views.when, duration=views.duration, size=views.size, rate=views.rate, lines=views.lines
        )
        self._templates = Jinja2Templates(env=env)

    def page(
        self, request: Request, name: str, context: dict[str, Any], *, who: Principal | None = None,
        status_code: int = 200, headers: dict[str, str] | None = None,
    ) -> Response:
        token, new = session.csrf_token(request)
        full = {
            "csrf": token,
            "csrf_field": session.CSRF_FIELD,
            "who": who,
            "has_session": session.SESSION_COOKIE in request.cookies,
            "poll": f"every {POLL_SECONDS}s",
            "nav": "",
            **context,
        }
        response = self._templates.TemplateResponse(request, name, full, status_code=status_code, headers=headers)
        response.headers.update(SECURITY_HEADERS)
        if new:
            session.remember_csrf(response, request, token)
        return response
