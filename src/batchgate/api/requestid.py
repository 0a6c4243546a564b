"""Every response carries an `x-request-id` (the SDK surfaces it as `_request_id` / `e.request_id`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchgate import ids


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ids.request_id().encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)
