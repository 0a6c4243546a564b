"""Webhook endpoints and deliveries as JSON objects (batchgate's own surface: OpenAI configures webhooks in its
dashboard, so only the events themselves follow OpenAI's shape)."""

from __future__ import annotations

from typing import Any

from batchgate.domain.webhooks import DeliveryAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_object(e: WebhookEndpoint, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": e.id, "object": "webhook_endpoint", "url": e.url, "events": list(e.events),
                           "created_at": e.created_at}
    if with_secret:
        out["secret"] = e.secret  # shown once, at creation
    return out


def endpoint_deleted(endpoint_id: str) -> dict[str, Any]:
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def attempt_object(a: DeliveryAttempt) -> dict[str, Any]:
    return {"number": a.number, "at": a.at, "status_code": a.status_code, "error": a.error,
            "duration_ms": a.duration_ms}


def delivery_object(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "object": "webhook_delivery",
        "endpoint_id": d.endpoint_id,
        "url": d.url,
        "status": d.status.value,
        "event": d.payload(),
        "next_attempt_at": d.next_attempt_at,
        "attempts": [attempt_object(a) for a in d.attempts],
    }
