"""Webhook rows <-> domain values, shared by the SQLite and PostgreSQL adapters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from batchgate import ids
from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import (
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    event_type,
)

ENDPOINT_COLUMNS = "id, project, url, secret, events, created_at"
DELIVERY_COLUMNS = (
    "id, endpoint_id, project, url, batch_id, event_id, event_type, created_at, status, next_attempt_at"
)
ATTEMPT_COLUMNS = "delivery_id, number, at, status_code, error, duration_ms"


def endpoint_params(e: WebhookEndpoint) -> tuple[Any, ...]:
    return (e.id, e.project, e.url, e.secret, orjson.dumps(list(e.events)).decode(), e.created_at)


def endpoint_from_row(r: Any) -> WebhookEndpoint:
    return WebhookEndpoint(r[0], r[1], r[2], r[3], tuple(orjson.loads(r[4])), r[5])


def delivery_from_row(r: Any, attempts: Iterable[DeliveryAttempt] = ()) -> WebhookDelivery:
    return WebhookDelivery(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], DeliveryStatus(r[8]), r[9],
                           tuple(attempts))


def claim_from_row(r: Any) -> DeliveryClaim:
    """A claim row: DELIVERY_COLUMNS, then attempts, generation and the endpoint's secret (NULL: deleted)."""
    return DeliveryClaim(delivery_from_row(r[:10]), r[12], r[10], r[11])


def attempt_from_row(r: Any) -> DeliveryAttempt:
    return DeliveryAttempt(r[1], r[2], r[3], r[4], r[5])


def attempt_params(delivery_id: str, a: DeliveryAttempt) -> tuple[Any, ...]:
    return (delivery_id, a.number, a.at, a.status_code, a.error, a.duration_ms)


def planned_deliveries(
    endpoints: Iterable[Any], project: str, batch_id: str, status: BatchStatus, now: int
) -> list[tuple[Any, ...]]:
    """Delivery rows (DELIVERY_COLUMNS) for one terminal transition: one per endpoint (rows of id, url, events)
    that subscribed to its event, all sharing one event id and due at once."""
    kind = event_type(status)
    event = ids.event_id()
    return [
        (ids.webhook_delivery_id(), e[0], project, e[1], batch_id, event, kind, now,
         DeliveryStatus.PENDING.value, float(now))
        for e in endpoints
        if kind in orjson.loads(e[2])
    ]
