"""GET /v1/batches/{batch_id}/results: the result lines a batch has recorded so far, after a cursor (an extension;
docs/extensions.md, "Results while a batch runs").

Each line is exactly as the output file (a 2xx answer) or the error file (anything else) will have it. JSON by
default, for the SDKs' `client.get`; `format=jsonl` answers the lines themselves, the page's facts in headers.
`wait=SECONDS` (up to 60) holds the request until a line is there or the batch ends: a follower asks again at
once with the cursor it got, until `done`. `stream=true` answers server-sent events instead, one `data:` event per
page (the JSON page) as lines are recorded, until the page that says `done`: one request for the whole batch,
which costs the server far less than a long poll per page when many clients follow (bench/follow.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.context import ctx, principal
from batchgate.domain.results_feed import FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX, FEED_WAIT_MAX, FeedPage
from batchgate.protocol import params
from batchgate.services.auth import Principal
from batchgate.services.results_feed import ResultFeed

_MAX_CURSOR = 2**62
_STREAM_WAIT = 15.0  # a quiet stream gets a comment line this often, so proxies keep it open
_STREAM_EVERY = 0.25  # seconds between two events of one stream, at least


async def batch_results(request: Request) -> Response:
    who = await principal(request)
    q = request.query_params
    after = params.query_int(q, "after", 0, 0, _MAX_CURSOR)
    limit = params.query_int(q, "limit", FEED_LIMIT_DEFAULT, 1, FEED_LIMIT_MAX)
    wait = params.query_int(q, "wait", 0, 0, int(FEED_WAIT_MAX))
    shape = params.query_choice(q, "format", "json", ("json", "jsonl"))
    stream = params.query_choice(q, "stream", "false", ("true", "false")) == "true"
    feed = ctx(request).results
    batch_id = request.path_params["batch_id"]
    page = await feed.read(who, batch_id, after, limit, 0.0 if stream else float(wait))  # 404 before any stream
    if stream:
        return StreamingResponse(_events(feed, who, page, limit), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
    if shape == "jsonl":
        return Response(b"".join(line.data + b"\n" for line in page.lines), media_type="application/jsonl",
                        headers=_headers(page))
    return Response(_json(page), media_type="application/json")


async def _events(feed: ResultFeed, who: Principal, page: FeedPage, limit: int) -> AsyncIterator[bytes]:
    """One event per page with lines (and the last, done, page); a comment line when a quiet minute passes. At
    most one event every _STREAM_EVERY seconds: what a follower costs the server is mostly per event, not per
    line, and a line waits at most that much longer."""
    while True:
        if page.lines or page.done:
            yield b"data: " + _json(page) + b"\n\n"
        else:
            yield b": keep-alive\n\n"
        if page.done:
            return
        sent = time.monotonic()
        page = await feed.read(who, page.head.batch_id, page.cursor, limit, _STREAM_WAIT)
        if page.lines and not page.has_more and time.monotonic() - sent < _STREAM_EVERY:
            await asyncio.sleep(_STREAM_EVERY - (time.monotonic() - sent))
            # what came meanwhile joins this page
            more = await feed.read(who, page.head.batch_id, page.cursor, limit - len(page.lines), 0.0)
            page = FeedPage(more.head, page.lines + more.lines, more.cursor, more.has_more)


def _facts(page: FeedPage) -> dict[str, object]:
    head = page.head
    return {
        "cursor": str(page.cursor), "has_more": page.has_more, "done": page.done, "batch_status": head.status.value,
        "output_file_id": head.output_file_id, "error_file_id": head.error_file_id,
    }


def _json(page: FeedPage) -> bytes:
    """The lines are spliced in as stored (they are JSON already): no parse and dump per line."""
    facts = orjson.dumps(_facts(page))
    return b"".join((
        b'{"object":"list","data":[', b",".join(line.data for line in page.lines), b"],", facts[1:],
    ))


def _headers(page: FeedPage) -> dict[str, str]:
    return {f"x-batchgate-{k.replace('_', '-')}": "" if v is None else str(v).lower() if isinstance(v, bool)
            else str(v) for k, v in _facts(page).items()}


routes = [Route("/v1/batches/{batch_id}/results", batch_results, methods=["GET"])]
