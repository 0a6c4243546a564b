"""/v1/batches: create (with an optional Idempotency-Key, docs/extensions.md), retrieve, cancel, list; and the
extensions pause, resume and retry."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, json_body, principal
from batchgate.domain import limits
from batchgate.domain.idempotency import HEADER, CreateKind
from batchgate.protocol import objects, params
from batchgate.protocol.requests import CreateBatch, RetryBatch
from batchgate.services.idempotency import checked_key, replayed, request_hash


async def create_batch(request: Request) -> Response:
    who = await principal(request, rate="batches")
    key = checked_key(request.headers.get(HEADER))
    body = await json_body(request)
    c = ctx(request)
    req = CreateBatch.from_json(body)
    if key is None:
        return JSON(objects.batch_object(await c.batches.create(who, req)))
    # the parsed body, keys sorted: the same JSON spelled differently is the same request
    digest = request_hash(b"POST /v1/batches", orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    batch, created = await c.idempotency.create(
        who, key, CreateKind.BATCH, digest, lambda: c.batches.create(who, req),
        lambda batch_id: c.batches.get(who, batch_id), lambda made: made.id,
    )
    return JSON(objects.batch_object(batch), headers=replayed(created))


async def retrieve_batch(request: Request) -> Response:
    who = await principal(request)
    batch = await ctx(request).batches.get(who, request.path_params["batch_id"])
    return JSON(objects.batch_object(batch))


async def cancel_batch(request: Request) -> Response:
    who = await principal(request)
    c = ctx(request)
    batch = await c.batches.cancel(who, request.path_params["batch_id"])
    return JSON(objects.batch_object(batch))


async def pause_batch(request: Request) -> Response:
    who = await principal(request)
    batch = await ctx(request).batches.pause(who, request.path_params["batch_id"])
    return JSON(objects.batch_object(batch))


async def resume_batch(request: Request) -> Response:
    who = await principal(request)
    batch = await ctx(request).batches.resume(who, request.path_params["batch_id"])
    return JSON(objects.batch_object(batch))


async def retry_batch(request: Request) -> Response:
    who = await principal(request, rate="batches")
    body = await json_body(request)
    batch = await ctx(request).batches.retry(who, request.path_params["batch_id"], RetryBatch.from_json(body))
    return JSON(objects.batch_object(batch))


async def list_batches(request: Request) -> Response:
    who = await principal(request)
    q = request.query_params
    limit = params.query_int(q, "limit", limits.BATCHES_LIST_DEFAULT, 1, limits.BATCHES_LIST_MAX)
    page = await ctx(request).batches.list(who, q.get("after") or None, limit, openai_only=True)
    return JSON(objects.list_object([objects.batch_object(b) for b in page.items], page.has_more))


routes = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    # Extensions (docs/extensions.md): pause and resume, retry what failed or never ran.
    Route("/v1/batches/{batch_id}/pause", pause_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}/resume", resume_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}/retry", retry_batch, methods=["POST"]),
]
