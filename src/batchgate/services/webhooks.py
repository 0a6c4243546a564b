"""Webhook endpoints per project, and the deliveries of a batch's events. Sending is the worker's
(worker/webhooks.py); the events themselves are queued by the store with each terminal status change."""

from __future__ import annotations

from batchgate import clock, ids
from batchgate.domain import webhook_signature
from batchgate.domain.webhooks import WebhookDelivery, WebhookEndpoint, url_problem
from batchgate.errors import InvalidValue, NotFound
from batchgate.protocol.requests import CreateWebhook
from batchgate.services.auth import Principal
from batchgate.services.batches import BatchService
from batchgate.store.base import WebhookStore

MAX_ENDPOINTS_PER_PROJECT = 20


class WebhookService:
    def __init__(self, store: WebhookStore, batches: BatchService, allow_private: bool = True) -> None:
        self._store = store
        self._batches = batches
        self._allow_private = allow_private

    async def create(self, who: Principal, req: CreateWebhook) -> WebhookEndpoint:
        """A new endpoint of the caller's project; the result carries its signing secret (shown only now)."""
        problem = url_problem(req.url, self._allow_private)
        if problem is not None:
            raise InvalidValue(problem, param="url")
        if len(await self._store.list_webhooks(who.project)) >= MAX_ENDPOINTS_PER_PROJECT:
            raise InvalidValue(f"A project may have at most {MAX_ENDPOINTS_PER_PROJECT} webhook endpoints.",
                               param="url")
        endpoint = WebhookEndpoint(ids.webhook_endpoint_id(), who.project, req.url, webhook_signature.new_secret(),
                                   req.events, clock.now())
        await self._store.create_webhook(endpoint)
        return endpoint

    async def endpoints(self, who: Principal) -> list[WebhookEndpoint]:
        return await self._store.list_webhooks(None if who.admin else who.project)

    async def delete(self, who: Principal, webhook_id: str) -> None:
        if not await self._store.delete_webhook(webhook_id, None if who.admin else who.project):
            raise NotFound(f"No webhook endpoint found with id '{webhook_id}'.", param="webhook_id")

    async def deliveries_for_batch(self, who: Principal, batch_id: str) -> list[WebhookDelivery]:
        """Every delivery of the batch's events with its attempts, to whoever may see the batch."""
        await self._batches.get(who, batch_id)  # 404 unless the caller may see the batch
        return await self._store.deliveries_for_batch(batch_id)

