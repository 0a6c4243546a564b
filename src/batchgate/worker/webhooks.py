"""Sending webhook deliveries: claim the due ones under a lease, POST each signed event, record every attempt.

Driven by the worker loop (`tick()`), with its own aiohttp session. A delivery is at-least-once: a worker that
dies mid-request leaves it to be claimed again when its lease runs out, with the same `webhook-id`, which is
what Standard Webhooks receivers deduplicate on.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson

from batchgate import clock
from batchgate.domain import webhook_signature
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryPolicy, DeliveryStatus, url_problem
from batchgate.settings import Settings
from batchgate.store.base import WebhookStore
from batchgate.worker.public_resolver import PublicResolver

log = logging.getLogger("batchgate.webhooks")

MAX_IN_FLIGHT = 32  # deliveries one worker sends at once
USER_AGENT = "batchgate-webhooks/1"
REFUSED = "refused"  # how an attempt our own URL rules stopped begins its error


class WebhookSender:
    def __init__(self, settings: Settings, store: WebhookStore, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._policy = DeliveryPolicy(settings.webhook_max_attempts, settings.webhook_retry_base_seconds,
                                      settings.webhook_retry_max_seconds)
        self._timeout = settings.webhook_timeout
        self._allow_private = settings.webhook_allow_private
        # Long enough for one request and the write after it; a lost worker's deliveries come back after it.
        self._lease = settings.webhook_timeout + settings.lease_seconds
        self._interval = settings.poll_interval
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_poll = 0.0

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=MAX_IN_FLIGHT, resolver=None if self._allow_private else PublicResolver()
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"user-agent": USER_AGENT},
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Let requests in flight finish for up to `grace` seconds; the rest go back when their lease runs out."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def poke(self) -> None:
        """A batch just ended here: look for deliveries at the next tick, not after the poll interval."""
        self._next_poll = 0.0

    async def tick(self) -> bool:
        """Claim what is due (at most every poll interval) and start sending it; True when something was."""
        now = clock.now_f()
        free = MAX_IN_FLIGHT - len(self._tasks)
        if now < self._next_poll or free <= 0 or self._session is None:
            return False
        self._next_poll = now + self._interval
        claims = await self._store.claim_deliveries(self._owner, now, self._lease, free)
        for claim in claims:
            t = asyncio.create_task(self._deliver(claim), name=f"webhook-{claim.delivery.id}")
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        return bool(claims)

    async def _deliver(self, claim: DeliveryClaim) -> None:
        d = claim.delivery
        try:
            if claim.secret is None:  # the endpoint was deleted after this was queued
                await self._store.record_attempt(d.id, claim.generation, None, DeliveryStatus.DISCARDED, None)
                return
            attempt = await self._send(claim, claim.secret)
            status, next_at = self._outcome(attempt)
            if not await self._store.record_attempt(d.id, claim.generation, attempt, status, next_at):
                log.warning("webhook %s: lease lost before attempt %d was recorded", d.id, attempt.number)
            elif status is DeliveryStatus.PENDING:
                log.info("webhook %s (%s %s) attempt %d failed (%s); next in %.0f s", d.id, d.event_type,
                         d.batch_id, attempt.number, attempt.error or attempt.status_code, (next_at or 0) - time.time())
            else:
                log.info("webhook %s (%s %s) %s after %d attempt(s)", d.id, d.event_type, d.batch_id, status.value,
                         attempt.number)
        except Exception:
            # The lease runs out and the delivery is claimed again; nothing is lost by giving up this try.
            log.exception("webhook %s: could not deliver or record the attempt", d.id)

    def _outcome(self, a: DeliveryAttempt) -> tuple[DeliveryStatus, float | None]:
        if a.status_code is not None and 200 <= a.status_code < 300:
            return DeliveryStatus.DELIVERED, None
        if a.status_code is None and a.error is not None and a.error.startswith(REFUSED):
            return DeliveryStatus.FAILED, None  # refused by our own rules: retrying cannot help
        if self._policy.gives_up_after(a.number):
            return DeliveryStatus.FAILED, None
        return DeliveryStatus.PENDING, clock.now_f() + self._policy.delay(a.number)

    async def _send(self, claim: DeliveryClaim, secret: str) -> DeliveryAttempt:
        d = claim.delivery
        number = claim.attempts_made + 1
        at = clock.now_f()
        problem = url_problem(d.url, self._allow_private)
        if problem is not None:
            return DeliveryAttempt(number, at, None, f"{REFUSED}: {problem}", 0)
        body = orjson.dumps(d.payload())
        headers = {"content-type": "application/json",
                   **webhook_signature.headers(secret, d.id, int(at), body)}
        assert self._session is not None
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(d.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                if 300 <= status < 400:
                    error = "redirects are not followed"
        except TimeoutError:
            error = f"no answer within {self._timeout:g} s"
        except (aiohttp.ClientError, OSError) as e:
            error = f"{type(e).__name__}: {e}"[:500]
        return DeliveryAttempt(number, at, status, error, round((time.monotonic() - started) * 1000))

