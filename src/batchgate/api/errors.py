"""The one place errors become HTTP responses: an OpenAI envelope (Anthropic's on Anthropic's paths, under
/v1/messages), never a stack trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from batchgate import logs
from batchgate.api.context import JSON
from batchgate.domain.messages import error_body
from batchgate.errors import BatchgateError

log = logging.getLogger("batchgate.api")


def envelope(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


ANTHROPIC_PREFIX = "/v1/messages"


def _anthropic(request: Request) -> bool:
    path = request.url.path
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def anthropic_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Anthropic's error shape: {"type": "error", "error": {"type", "message"}, "request_id"}."""
    body: dict[str, object] = error_body(status, message)
    rid = logs.request_id.get()
    if rid:
        body["request_id"] = rid
    return JSON(body, status_code=status, headers={**(headers or {}), **_request_id()})


async def on_batchgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BatchgateError)
    if _anthropic(request):
        return anthropic_error(exc.status_code, exc.message, exc.headers)
    return JSON(exc.envelope(), status_code=exc.status_code, headers=exc.headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _anthropic(request):
        if exc.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(exc.detail)
        return anthropic_error(exc.status_code, message, getattr(exc, "headers", None))
    if exc.status_code == 404:
        body = envelope(f"Unknown request URL: {request.method} {request.url.path}. Please check the URL for "
                        "typos, or see the docs at https://platform.openai.com/docs/api-reference/.",
                        "invalid_request_error", None, "unknown_url")
    elif exc.status_code == 405:
        body = envelope(f"Method {request.method} is not allowed on {request.url.path}.",
                        "invalid_request_error", None, "method_not_allowed")
    else:
        body = envelope(str(exc.detail), "invalid_request_error")
    return JSON(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
              exc_info=exc)
    if _anthropic(request):
        return anthropic_error(500, "The server had an error while processing your request.",
                               {"x-should-retry": "true"})
    return JSON(envelope("The server had an error while processing your request.", "server_error"),
                status_code=500, headers={"x-should-retry": "true", **_request_id()})


def _request_id() -> dict[str, str]:
    # This handler runs outside the request-id middleware (Starlette puts it outermost): add the id here.
    rid = logs.request_id.get()
    return {"x-request-id": rid} if rid else {}
