"""/v1/messages/batches: Anthropic's Message Batches API (create, retrieve, list, cancel, results, delete), with
the same keys and projects as the OpenAI routes. Errors on these paths take Anthropic's shape (api/errors.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, json_body
from batchgate.domain import limits
from batchgate.protocol import anthropic, params
from batchgate.services.auth import Principal

PREFIX = "/v1/messages"  # every path whose errors are rendered as Anthropic's


async def anthropic_principal(request: Request, rate: str | None = None) -> Principal:
    """Who is calling: the key of `Authorization: Bearer` (recent SDKs) or of `x-api-key` (Anthropic's own
    header), 401 otherwise; with `rate`, also spend one request of that per-key rate limit."""
    c = ctx(request)
    authorization = request.headers.get("authorization")
    key = request.headers.get("x-api-key")
    if authorization is None and key:
        authorization = f"Bearer {key}"
    who = await c.auth.authenticate(authorization)
    if rate is not None:
        c.limiter.hit(who.key_id or "anonymous", rate)
    return who


def _base(request: Request) -> str:
    return str(request.base_url)


async def create(request: Request) -> Response:
    who = await anthropic_principal(request, rate="batches")
    c = ctx(request)
    body = await json_body(request, limit=c.settings.anthropic_max_batch_bytes)
    req = anthropic.CreateMessageBatch.from_json(body, c.settings.anthropic_max_batch_requests)
    batch = await c.message_batches.create(who, req)
    return JSON(anthropic.message_batch_object(batch, _base(request)))


async def retrieve(request: Request) -> Response:
    who = await anthropic_principal(request)
    batch = await ctx(request).message_batches.get(who, request.path_params["batch_id"])
    return JSON(anthropic.message_batch_object(batch, _base(request)))


async def list_batches(request: Request) -> Response:
    who = await anthropic_principal(request)
    q = request.query_params
    limit = params.query_int(q, "limit", limits.MESSAGE_BATCHES_LIST_DEFAULT, 1, limits.MESSAGE_BATCHES_LIST_MAX)
    page = await ctx(request).message_batches.list(who, q.get("before_id") or None, q.get("after_id") or None, limit)
    return JSON(anthropic.list_object(page.items, page.has_more, _base(request)))


async def cancel(request: Request) -> Response:
    who = await anthropic_principal(request)
    batch = await ctx(request).message_batches.cancel(who, request.path_params["batch_id"])
    return JSON(anthropic.message_batch_object(batch, _base(request)))


async def delete(request: Request) -> Response:
    who = await anthropic_principal(request)
    batch_id = request.path_params["batch_id"]
    await ctx(request).message_batches.delete(who, batch_id)
    return JSON(anthropic.deleted_object(batch_id))


async def results(request: Request) -> Response:
    who = await anthropic_principal(request)
    lines = await ctx(request).message_batches.results(who, request.path_params["batch_id"])
    return StreamingResponse(lines, media_type="application/x-jsonl")


routes = [
    Route("/v1/messages/batches", create, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", delete, methods=["DELETE"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}/results", results, methods=["GET"]),
]
