"""Every response carries an `x-request-id` (the SDK surfaces it as `_request_id` / `e.request_id`); on
Anthropic's paths (/v1/messages...) also `request-id`, the header the `anthropic` SDK reads."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchgate import ids, logs

access = logging.getLogger("batchgate.access")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid_text = ids.request_id()
        rid = rid_text.encode()
        # Every log line of this request carries the id. Not reset on the way out: each request runs in its own
        # task (a copy of the context), and the server's "unhandled error" line, logged after this returns,
        # should carry it too.
        logs.request_id.set(rid_text)

        status = 0
        start = time.perf_counter()
        extra = [(b"request-id", rid)] if scope["path"].startswith("/v1/messages") else []

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # An access line at debug level only: a busy server answers thousands of polls a minute.
            if access.isEnabledFor(logging.DEBUG):
                access.debug("%s %s %d %.1fms", scope["method"], scope["path"], status or 500,
                             (time.perf_counter() - start) * 1000)
