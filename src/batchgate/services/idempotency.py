"""Idempotent create: the same Idempotency-Key from the same project within 24 h answers the same object.

A key is claimed in the database before anything is created: the (project, key) primary key lets exactly one of
concurrent duplicates claim it; the others read the claim back and wait (briefly) for the object it records.
The same key with another request (another hash) is a 409; a create that fails gives its claim back, so the
key may be used again. Expired keys are removed by the worker's chores.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from batchgate import clock
from batchgate.domain.idempotency import (
    CLAIM_STALE_SECONDS,
    HEADER,
    KEY_TTL_SECONDS,
    CreateKind,
    IdempotencyRecord,
    valid_key,
)
from batchgate.errors import Conflict, InvalidRequest
from batchgate.services.auth import Principal
from batchgate.store.base import IdempotencyStore

T = TypeVar("T")

WAIT_SECONDS = 30.0  # how long a duplicate waits for the request that claimed its key to create the object
_POLL = 0.05


def request_hash(*parts: bytes) -> str:
    """The hash that tells two requests under one key apart."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def checked_key(value: str | None) -> str | None:
    """The header's key (None when absent); a 400 for one that is empty, too long or not printable ASCII."""
    if value is None:
        return None
    if not valid_key(value):
        raise InvalidRequest(
            f"Invalid '{HEADER}' header: expected 1 to 255 printable ASCII characters.",
            param=HEADER, code="invalid_idempotency_key",
        )
    return value


def replayed(created: bool) -> dict[str, str]:
    """The answer's header saying whether it is an earlier request's object (as Stripe says it)."""
    return {"idempotent-replayed": "false" if created else "true"}


class IdempotencyService:
    def __init__(self, store: IdempotencyStore, wait: float = WAIT_SECONDS) -> None:
        self._store = store
        self._wait = wait

    async def create(
        self, who: Principal, key: str, kind: CreateKind, digest: str,
        make: Callable[[], Awaitable[T]], load: Callable[[str], Awaitable[T]], id_of: Callable[[T], str],
    ) -> tuple[T, bool]:
        """The object `key` stands for: made now by `make` (then True), or the one an earlier request with the same
        key and `digest` made, read by `load` (then False)."""
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + self._wait
        while True:
            now = clock.now()
            mine = IdempotencyRecord(who.project, key, kind, digest, owner, None, now, now + KEY_TTL_SECONDS)
            got = await self._store.claim_idempotency_key(mine, now, now - CLAIM_STALE_SECONDS)
            if got.owner == owner:
                try:
                    made = await make()
                except BaseException:
                    await self._store.release_idempotency_key(who.project, key, owner)
                    raise
                await self._store.set_idempotency_object(who.project, key, owner, id_of(made))
                return made, True
            if got.kind is not kind or got.request_hash != digest:
                raise Conflict(
                    f"The '{HEADER}' header '{key}' was already used with a different request in the last 24 hours.",
                    param=HEADER, code="idempotency_key_reused",
                )
            if got.object_id is not None:
                return await load(got.object_id), False
            if time.monotonic() >= deadline:
                raise Conflict(
                    f"A request with the '{HEADER}' header '{key}' is still being processed; retry later.",
                    param=HEADER, code="idempotency_key_in_use",
                )
            await asyncio.sleep(_POLL)
