"""GET /v1/batches/{batch_id}/events: a batch's progress as server-sent events, so clients need not poll.

Each change of status, request counts, estimated completion, pause or being at risk of missing the window is one
`batch.updated` event whose data is the Batch object; the event for a terminal status is the last, and the stream
then ends. A comment line every 15 s keeps proxies from closing a quiet stream. The store is polled twice a second
for this one batch: the worker that moves it may be another thread or another machine, so polling the shared state
is what works everywhere. When the client goes away Starlette cancels the stream (ASGI 2.3), or the next write
fails (ASGI 2.4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.context import Context, ctx, principal
from batchgate.domain.batch import Batch
from batchgate.protocol import objects
from batchgate.services.auth import Principal

log = logging.getLogger("batchgate.api")

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
EVENT = "batch.updated"


def sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def batch_events(request: Request) -> Response:
    who = await principal(request)
    c = ctx(request)
    batch = await c.batches.get(who, request.path_params["batch_id"])  # 404 now, before the stream starts
    return StreamingResponse(
        _changes(c, who, batch), media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _changes(c: Context, who: Principal, batch: Batch) -> AsyncIterator[bytes]:
    last: object = None
    quiet_since = time.monotonic()
    sent = 0
    ending = "client went away"
    try:
        while True:
            seen = (batch.status, batch.request_counts, objects.estimated_completion(batch), batch.paused,
                    objects.at_risk_since(batch))
            if seen != last:
                last = seen
                quiet_since = time.monotonic()
                sent += 1
                yield sse(EVENT, objects.batch_object(batch))
                if batch.status.terminal:
                    ending = f"batch {batch.status.value}"
                    return
            elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)
            batch = await c.batches.get(who, batch.id)
    finally:
        log.debug("event stream of %s closed after %d events: %s", batch.id, sent, ending)


routes = [Route("/v1/batches/{batch_id}/events", batch_events, methods=["GET"])]
