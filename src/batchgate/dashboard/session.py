"""Who is looking at the dashboard, and whether a form post really came from one of its pages.

* Login stores the API key itself in a cookie (`bg_session`): HTTP-only (no script reads it), SameSite=Strict
  (no other site's page or link sends it) and `Secure` when the request came over https. Over plain http
  (e.g. http://127.0.0.1) it cannot be `Secure`, or browsers would drop it; put TLS in front of any non-loopback
  deployment (and let uvicorn trust the proxy's X-Forwarded-Proto so the cookie becomes `Secure`).
  Each request checks the key again through AuthService, so a revoked key logs its sessions out at once.
* CSRF, for every state-changing POST (login, logout, cancel): a double-submit token. A random value lives in
  the `bg_csrf` cookie (HTTP-only, SameSite=Strict) and in a hidden field of every form we render; a POST must
  carry both and they must match, and a present Origin header must be our own. This also protects the
  no-keys loopback mode, where there is no session cookie for SameSite to withhold.
"""

from __future__ import annotations

import hmac
import secrets
import urllib.parse

from starlette.requests import Request
from starlette.responses import Response

from batchgate.dashboard.deps import services
from batchgate.errors import PayloadTooLarge, PermissionDenied
from batchgate.services.auth import Principal

SESSION_COOKIE = "bg_session"
CSRF_COOKIE = "bg_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
FORM_LIMIT = 16 * 1024  # bytes; our forms carry a key and a token


async def principal(request: Request) -> Principal:
    """The cookie's key checked like an API call's bearer (Unauthorized if missing or wrong, when keys exist)."""
    key = request.cookies.get(SESSION_COOKIE)
    return await services(request).auth.authenticate(f"Bearer {key}" if key else None)


def login(response: Response, request: Request, key: str) -> None:
    response.set_cookie(SESSION_COOKIE, key, max_age=SESSION_SECONDS, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=_https(request))


def logout(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's token, and whether it is new (then `remember_csrf` must set the cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token, False
    return secrets.token_urlsafe(32), True


def remember_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=_https(request))


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form (size-capped), after the CSRF checks; PermissionDenied when they fail."""
    origin = request.headers.get("origin")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
        raise PermissionDenied("This form was posted from another site.")
    form = await _read_form(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), form.get(CSRF_FIELD, "").encode()):
        raise PermissionDenied("The form's security token is missing or stale: reload the page and try again.")
    return form


async def _read_form(request: Request) -> dict[str, str]:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_LIMIT:
            raise PayloadTooLarge(f"A dashboard form is at most {FORM_LIMIT} bytes.")
    try:
        pairs = urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return dict(pairs)


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
