"""The SQLite adapter's webhook SQL. Each function runs on the store's connection inside the transaction (or read)
that SQLiteStore opens for it, so an event is written in the same transaction as the status change it reports."""

from __future__ import annotations

import sqlite3

from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from batchgate.store import webhook_rows as rows


def insert_endpoint(db: sqlite3.Connection, e: WebhookEndpoint) -> None:
    db.execute(f"INSERT INTO webhook_endpoints ({rows.ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
               rows.endpoint_params(e))


def list_endpoints(db: sqlite3.Connection, project: str | None) -> list[WebhookEndpoint]:
    found = db.execute(
        f"SELECT {rows.ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE (? IS NULL OR project = ?) ORDER BY seq",
        (project, project),
    ).fetchall()
    return [rows.endpoint_from_row(r) for r in found]


def delete_endpoint(db: sqlite3.Connection, endpoint_id: str, project: str | None) -> bool:
    cur = db.execute("DELETE FROM webhook_endpoints WHERE id = ? AND (? IS NULL OR project = ?)",
                     (endpoint_id, project, project))
    if cur.rowcount == 0:
        return False
    db.execute(
        "UPDATE webhook_deliveries SET status = 'discarded', next_attempt_at = NULL "
        "WHERE endpoint_id = ? AND status = 'pending'",
        (endpoint_id,),
    )
    return True


def emit(db: sqlite3.Connection, batch_id: str, status: BatchStatus, now: int) -> None:
    """Queue the event of `batch_id` entering terminal `status` for each endpoint of its project that wants it."""
    project = db.execute("SELECT project FROM batches WHERE id = ?", (batch_id,)).fetchone()[0]
    endpoints = db.execute("SELECT id, url, events FROM webhook_endpoints WHERE project = ?", (project,)).fetchall()
    planned = rows.planned_deliveries(endpoints, project, batch_id, status, now)
    if planned:
        db.executemany(
            f"INSERT INTO webhook_deliveries ({rows.DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", planned
        )


def any_due(db: sqlite3.Connection, now: float) -> bool:
    """Asked on the reader first, so that polling with nothing due never takes the write lock."""
    return db.execute(
        "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until < ? "
        "LIMIT 1",
        (now, now),
    ).fetchone() is not None


def claim(db: sqlite3.Connection, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]:
    due = db.execute(
        "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until < ? "
        "ORDER BY next_attempt_at LIMIT ?",
        (now, now, limit),
    ).fetchall()
    claims = []
    for (delivery_id,) in due:
        db.execute(
            "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, generation = generation + 1 WHERE id = ?",
            (owner, now + lease, delivery_id),
        )
        r = db.execute(
            f"SELECT {rows.DELIVERY_COLUMNS}, attempts, generation, "
            "(SELECT secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id) "
            "FROM webhook_deliveries d WHERE id = ?",
            (delivery_id,),
        ).fetchone()
        claims.append(rows.claim_from_row(r))
    return claims


def record(
    db: sqlite3.Connection, delivery_id: str, generation: int, attempt: DeliveryAttempt | None,
    status: DeliveryStatus, next_attempt_at: float | None,
) -> bool:
    cur = db.execute(
        # The generation moves on: this claim is spent, so the same attempt can never be recorded twice.
        "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, lease_until = 0, attempts = attempts + ?, "
        "generation = generation + 1 WHERE id = ? AND generation = ? AND status = 'pending'",
        (status.value, next_attempt_at, int(attempt is not None), delivery_id, generation),
    )
    if cur.rowcount == 0:
        return False
    if attempt is not None:
        db.execute(f"INSERT INTO webhook_attempts ({rows.ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                   rows.attempt_params(delivery_id, attempt))
    return True


def for_batch(db: sqlite3.Connection, batch_id: str) -> list[WebhookDelivery]:
    found = db.execute(
        f"SELECT {rows.DELIVERY_COLUMNS} FROM webhook_deliveries WHERE batch_id = ? ORDER BY seq", (batch_id,)
    ).fetchall()
    attempts = db.execute(
        f"SELECT {rows.ATTEMPT_COLUMNS} FROM webhook_attempts WHERE delivery_id IN "
        "(SELECT id FROM webhook_deliveries WHERE batch_id = ?) ORDER BY delivery_id, number",
        (batch_id,),
    ).fetchall()
    by_delivery: dict[str, list[DeliveryAttempt]] = {}
    for a in attempts:
        by_delivery.setdefault(a[0], []).append(rows.attempt_from_row(a))
    return [rows.delivery_from_row(r, by_delivery.get(r[0], ())) for r in found]
