"""/v1/webhooks: a project's webhook endpoints; /v1/batches/{id}/webhook_deliveries: what was sent about a batch.
See docs/webhooks.md."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, json_body, principal
from batchgate.protocol import objects
from batchgate.protocol import webhooks as wire
from batchgate.protocol.requests import CreateWebhook


async def create_webhook(request: Request) -> Response:
    who = await principal(request)
    c = ctx(request)
    req = CreateWebhook.from_json(await json_body(request), c.settings.webhook_allow_private)
    endpoint = await c.webhooks.create(who, req)
    return JSON(wire.endpoint_object(endpoint, with_secret=True))


async def list_webhooks(request: Request) -> Response:
    who = await principal(request)
    endpoints = await ctx(request).webhooks.endpoints(who)
    return JSON(objects.list_object([wire.endpoint_object(e) for e in endpoints], False))


async def delete_webhook(request: Request) -> Response:
    who = await principal(request)
    webhook_id = request.path_params["webhook_id"]
    await ctx(request).webhooks.delete(who, webhook_id)
    return JSON(wire.endpoint_deleted(webhook_id))


async def list_deliveries(request: Request) -> Response:
    who = await principal(request)
    deliveries = await ctx(request).webhooks.deliveries_for_batch(who, request.path_params["batch_id"])
    return JSON(objects.list_object([wire.delivery_object(d) for d in deliveries], False))


routes = [
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    Route("/v1/batches/{batch_id}/webhook_deliveries", list_deliveries, methods=["GET"]),
]
