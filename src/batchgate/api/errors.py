"""The one place errors become HTTP responses: always an OpenAI envelope, never a stack trace."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from batchgate import logs
from batchgate.api.context import JSON
from batchgate.errors import BatchgateError

log = logging.getLogger("batchgate.api")


def envelope(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def on_batchgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BatchgateError)
    return JSON(exc.envelope(), status_code=exc.status_code, headers=exc.headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
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
    return JSON(envelope("The server had an error while processing your request.", "server_error"),
                status_code=500, headers={"x-should-retry": "true", **_request_id()})


def _request_id() -> dict[str, str]:
    # This handler runs outside the request-id middleware (Starlette puts it outermost): add the id here.
    rid = logs.request_id.get()
    return {"x-request-id": rid} if rid else {}
