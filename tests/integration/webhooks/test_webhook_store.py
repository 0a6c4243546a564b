"""The Store's webhook methods, on real SQLite and the real PostgreSQL server: events are queued in the same
transaction as the terminal status change (exactly once), claimed under a lease, and every attempt is kept."""

from __future__ import annotations

from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch, BatchError, RequestCounts
from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import EVENT_TYPES, DeliveryAttempt, DeliveryStatus, WebhookEndpoint
from batchgate.store.base import Store

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"




def endpoint(i: str, project: str = "p", events: tuple[str, ...] = EVENT_TYPES) -> WebhookEndpoint:
    return WebhookEndpoint(i, project, f"http://127.0.0.1:9/{i}", SECRET, events, 100)


async def new_batch(s: Store, batch_id: str, project: str = "p") -> int:
    """A batch in `validating`, claimed: returns the claim's generation."""
    await s.insert_batch(Batch(batch_id, project, "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                               created_at=1000, expires_at=10_000))
    task = await s.claim_batch_task("w", now=1.0, lease=10)
    assert task is not None and task.batch.id == batch_id
    return task.generation


async def complete(s: Store, batch_id: str, project: str = "p") -> bool:
    gen = await new_batch(s, batch_id, project)
    assert await s.start_batch(batch_id, gen, [], "m", now=2)
    fin = await s.claim_batch_task("w", now=3.0, lease=10)
    assert fin is not None
    assert await s.enter_finalizing(batch_id, fin.generation, now=4)
    return await s.finish_batch(batch_id, fin.generation, BatchStatus.COMPLETED, 5, "out", None,
                                RequestCounts(0, 0, 0))


def attempt(n: int, code: int | None, error: str | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(n, 50.0 + n, code, error, 12)


def test_endpoints_are_per_project(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_a"))
        await s.create_webhook(endpoint("we_b", events=("batch.failed",)))
        await s.create_webhook(endpoint("we_q", project="q"))
        assert [e.id for e in await s.list_webhooks("p")] == ["we_a", "we_b"]
        assert (await s.list_webhooks("p"))[1].events == ("batch.failed",)
        assert [e.id for e in await s.list_webhooks(None)] == ["we_a", "we_b", "we_q"]
        assert not await s.delete_webhook("we_q", "p")  # another project's
        assert await s.delete_webhook("we_q", "q") and not await s.delete_webhook("we_q", None)
        assert await s.delete_webhook("we_b", None)  # admin
        assert [e.id for e in await s.list_webhooks(None)] == ["we_a"]

    run_with_store(body)


def test_terminal_transition_queues_one_event_per_matching_endpoint(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_all"))
        await s.create_webhook(endpoint("we_failed_only", events=("batch.failed",)))
        await s.create_webhook(endpoint("we_other", project="q"))
        assert await complete(s, "batch_c")
        (d,) = await s.deliveries_for_batch("batch_c")
        assert (d.endpoint_id, d.event_type, d.status, d.project) == ("we_all", "batch.completed",
                                                                       DeliveryStatus.PENDING, "p")
        assert d.payload() == {"id": d.event_id, "object": "event", "type": "batch.completed", "created_at": 5,
                               "data": {"id": "batch_c"}}
        assert d.event_id.startswith("evt_") and d.id.startswith("msg_") and d.attempts == ()

        gen = await new_batch(s, "batch_f")
        errors = [BatchError("invalid", "bad")]
        assert await s.fail_batch("batch_f", gen, errors, now=7)
        assert not await s.fail_batch("batch_f", gen, errors, now=8)  # no transition, no second event
        found = await s.deliveries_for_batch("batch_f")
        assert sorted(d.endpoint_id for d in found) == ["we_all", "we_failed_only"]
        assert {d.event_type for d in found} == {"batch.failed"} and len({d.event_id for d in found}) == 1

    run_with_store(body)


def test_no_event_when_the_transition_is_refused(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_all"))
        gen = await new_batch(s, "batch_x")
        b = await s.request_cancel("batch_x", now=2)
        assert b is not None and b.status is BatchStatus.CANCELLING
        fin = await s.claim_batch_task("w", now=20.0, lease=10)
        assert fin is not None and fin.generation != gen
        assert not await s.finish_batch("batch_x", gen, BatchStatus.CANCELLED, 3, None, None, RequestCounts(0, 0, 0))
        assert await s.deliveries_for_batch("batch_x") == []
        assert await s.finish_batch("batch_x", fin.generation, BatchStatus.CANCELLED, 3, None, None,
                                    RequestCounts(0, 0, 0))
        assert not await s.finish_batch("batch_x", fin.generation, BatchStatus.CANCELLED, 3, None, None,
                                        RequestCounts(0, 0, 0))
        assert [d.event_type for d in await s.deliveries_for_batch("batch_x")] == ["batch.cancelled"]

    run_with_store(body)


def test_claims_leases_retries_and_attempts(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_all"))
        assert await complete(s, "batch_c")
        (c,) = await s.claim_deliveries("w1", now=10.0, lease=5, limit=10)
        assert c.secret == SECRET and c.attempts_made == 0 and c.delivery.url == "http://127.0.0.1:9/we_all"
        assert await s.claim_deliveries("w2", now=11.0, lease=5, limit=10) == []  # leased
        assert await s.record_attempt(c.delivery.id, c.generation, attempt(1, 500), DeliveryStatus.PENDING, 30.0)
        assert not await s.record_attempt(c.delivery.id, c.generation, attempt(1, 500), DeliveryStatus.PENDING, 30.0)
        assert await s.claim_deliveries("w2", now=20.0, lease=5, limit=10) == []  # not due yet

        (c2,) = await s.claim_deliveries("w2", now=30.0, lease=5, limit=10)
        assert c2.attempts_made == 1 and c2.generation > c.generation
        # w2's lease runs out mid-request: w3 takes over, and w2 can no longer record anything
        (c3,) = await s.claim_deliveries("w3", now=40.0, lease=5, limit=10)
        assert not await s.record_attempt(c2.delivery.id, c2.generation, attempt(2, None, "timeout"),
                                          DeliveryStatus.PENDING, 50.0)
        assert await s.record_attempt(c3.delivery.id, c3.generation, attempt(2, None, "refused"),
                                      DeliveryStatus.PENDING, 45.0)
        (c4,) = await s.claim_deliveries("w3", now=45.0, lease=5, limit=10)
        assert c4.attempts_made == 2
        assert await s.record_attempt(c4.delivery.id, c4.generation, attempt(3, 204), DeliveryStatus.DELIVERED, None)
        assert await s.claim_deliveries("w3", now=1e12, lease=5, limit=10) == []

        (d,) = await s.deliveries_for_batch("batch_c")
        assert d.status is DeliveryStatus.DELIVERED and d.next_attempt_at is None
        assert [(a.number, a.status_code, a.error, a.duration_ms) for a in d.attempts] == [
            (1, 500, None, 12), (2, None, "refused", 12), (3, 204, None, 12)]
        assert d.attempts[0].at == 51.0

    run_with_store(body)


def test_deleting_an_endpoint_discards_what_it_has_not_acknowledged(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_a"))
        await s.create_webhook(endpoint("we_b"))
        assert await complete(s, "batch_c")
        claims = await s.claim_deliveries("w", now=10.0, lease=5, limit=10)
        assert sorted(c.delivery.endpoint_id for c in claims) == ["we_a", "we_b"]
        a = next(c for c in claims if c.delivery.endpoint_id == "we_a")
        assert await s.record_attempt(a.delivery.id, a.generation, attempt(1, 200), DeliveryStatus.DELIVERED, None)
        assert await s.delete_webhook("we_a", "p") and await s.delete_webhook("we_b", "p")
        statuses = {d.endpoint_id: d.status for d in await s.deliveries_for_batch("batch_c")}
        assert statuses == {"we_a": DeliveryStatus.DELIVERED, "we_b": DeliveryStatus.DISCARDED}
        assert await s.claim_deliveries("w", now=1e12, lease=5, limit=10) == []

    run_with_store(body)


def test_a_delivery_can_be_settled_without_an_attempt(run_with_store: Callable[[Body], None]) -> None:
    """What the sender does with a claim whose endpoint vanished meanwhile (its secret is None)."""
    async def body(s: Store) -> None:
        await s.create_webhook(endpoint("we_a"))
        assert await complete(s, "batch_c")
        (c,) = await s.claim_deliveries("w", now=10.0, lease=5, limit=10)
        assert await s.record_attempt(c.delivery.id, c.generation, attempt(1, 503), DeliveryStatus.PENDING, 11.0)
        (again,) = await s.claim_deliveries("w", now=12.0, lease=5, limit=10)
        assert again.secret == SECRET and again.attempts_made == 1
        assert await s.record_attempt(again.delivery.id, again.generation, None, DeliveryStatus.DISCARDED, None)
        (d,) = await s.deliveries_for_batch("batch_c")
        assert d.status is DeliveryStatus.DISCARDED and d.next_attempt_at is None and len(d.attempts) == 1

    run_with_store(body)
