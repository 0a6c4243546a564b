"""The PostgreSQL adapter's webhook SQL, and the steps that sequence it on a connection inside the transaction
PostgresStore opens, so an event is written in the same transaction as the status change it reports."""

from __future__ import annotations

from typing import Any

from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from batchgate.store import webhook_rows as rows

Conn = Any  # an asyncpg connection

INSERT_ENDPOINT = f"INSERT INTO webhook_endpoints ({rows.ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
LIST_ENDPOINTS = (
    f"SELECT {rows.ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ($1::text IS NULL OR project = $1) ORDER BY seq"
)
DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = $1 AND ($2::text IS NULL OR project = $2)"
DISCARD_PENDING = (
    "UPDATE webhook_deliveries SET status = 'discarded', next_attempt_at = NULL "
    "WHERE endpoint_id = $1 AND status = 'pending'"
)
ENDPOINTS_OF_BATCH = (
    "SELECT b.project, e.id, e.url, e.events FROM batches b "
    "LEFT JOIN webhook_endpoints e ON e.project = b.project WHERE b.id = $1"
)
INSERT_DELIVERIES = f"""
INSERT INTO webhook_deliveries ({rows.DELIVERY_COLUMNS})
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::bigint[], $9::text[], $10::float8[])
"""
# Due deliveries, skipping rows another worker is claiming; the generation fences out a worker whose lease ran out.
CLAIM = f"""
WITH picked AS (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until < $1
    ORDER BY next_attempt_at LIMIT $4
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET lease_owner = $2, lease_until = $3, generation = d.generation + 1
FROM picked p WHERE d.id = p.id
RETURNING {", ".join("d." + c.strip() for c in rows.DELIVERY_COLUMNS.split(","))}, d.attempts, d.generation,
    (SELECT secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id)
"""
RECORD = """
UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, lease_until = 0, attempts = attempts + $5,
    generation = generation + 1
WHERE id = $1 AND generation = $2 AND status = 'pending'
"""
INSERT_ATTEMPT = f"INSERT INTO webhook_attempts ({rows.ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
DELIVERIES_OF_BATCH = f"SELECT {rows.DELIVERY_COLUMNS} FROM webhook_deliveries WHERE batch_id = $1 ORDER BY seq"
ATTEMPTS_OF_BATCH = f"""
SELECT {rows.ATTEMPT_COLUMNS} FROM webhook_attempts
WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE batch_id = $1) ORDER BY delivery_id, number
"""


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1])


async def insert_endpoint(conn: Conn, e: WebhookEndpoint) -> None:
    await conn.execute(INSERT_ENDPOINT, *rows.endpoint_params(e))


async def list_endpoints(conn: Conn, project: str | None) -> list[WebhookEndpoint]:
    return [rows.endpoint_from_row(r) for r in await conn.fetch(LIST_ENDPOINTS, project)]


async def delete_endpoint(conn: Conn, endpoint_id: str, project: str | None) -> bool:
    if _count(await conn.execute(DELETE_ENDPOINT, endpoint_id, project)) == 0:
        return False
    await conn.execute(DISCARD_PENDING, endpoint_id)
    return True


async def emit(conn: Conn, batch_id: str, status: BatchStatus, now: int) -> None:
    """Queue the event of `batch_id` entering terminal `status` for each endpoint of its project that wants it."""
    found = await conn.fetch(ENDPOINTS_OF_BATCH, batch_id)
    endpoints = [(r[1], r[2], r[3]) for r in found if r[1] is not None]
    if not endpoints:
        return
    planned = rows.planned_deliveries(endpoints, found[0][0], batch_id, status, now)
    if planned:
        await conn.execute(INSERT_DELIVERIES, *(list(col) for col in zip(*planned, strict=True)))


async def claim(conn: Conn, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]:
    found = await conn.fetch(CLAIM, now, owner, now + lease, limit)
    return sorted((rows.claim_from_row(r) for r in found), key=lambda c: c.delivery.next_attempt_at or 0.0)


async def record(
    conn: Conn, delivery_id: str, generation: int, attempt: DeliveryAttempt | None,
    status: DeliveryStatus, next_attempt_at: float | None,
) -> bool:
    tag = await conn.execute(RECORD, delivery_id, generation, status.value, next_attempt_at, int(attempt is not None))
    if _count(tag) == 0:
        return False
    if attempt is not None:
        await conn.execute(INSERT_ATTEMPT, *rows.attempt_params(delivery_id, attempt))
    return True


async def for_batch(conn: Conn, batch_id: str) -> list[WebhookDelivery]:
    found = await conn.fetch(DELIVERIES_OF_BATCH, batch_id)
    by_delivery: dict[str, list[DeliveryAttempt]] = {}
    for a in await conn.fetch(ATTEMPTS_OF_BATCH, batch_id):
        by_delivery.setdefault(a[0], []).append(rows.attempt_from_row(a))
    return [rows.delivery_from_row(r, by_delivery.get(r[0], ())) for r in found]
