"""Logging in with an API key, and out again."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batchgate.dashboard import session
from batchgate.dashboard.deps import services
from batchgate.dashboard.render import Renderer
from batchgate.errors import Unauthorized


class LoginPages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    async def form(self, request: Request) -> Response:
        if not await services(request).auth.keys_exist():
            return RedirectResponse("/ui/batches", status_code=303)  # nothing to log in to (loopback, no keys)
        return self._r.page(request, "login.html", {"error": None})

    async def submit(self, request: Request) -> Response:
        form = await session.checked_form(request)
        key = form.get("key", "").strip()
        auth = services(request).auth
        if not await auth.keys_exist():
            return RedirectResponse("/ui/batches", status_code=303)
        try:
            await auth.authenticate(f"Bearer {key}" if key else None)
        except Unauthorized:
            return self._r.page(request, "login.html", {"error": "That API key is not valid."}, status_code=401)
        response = RedirectResponse("/ui/batches", status_code=303)
        session.login(response, request, key)
        return response

    async def logout(self, request: Request) -> Response:
        await session.checked_form(request)
        response = RedirectResponse("/ui/login", status_code=303)
        session.logout(response)
        return response
