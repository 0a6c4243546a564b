"""Idempotent create (docs/extensions.md, "Idempotent create"): an Idempotency-Key names one create per project.

The first request with a key claims it (a row with its request's hash and an owner token, no object yet);
the create then records the object it made. A repeat with the same hash gets that object; a different hash is
a conflict. A claim whose request died before creating anything is taken over after CLAIM_STALE_SECONDS.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

KEY_TTL_SECONDS = 24 * 3600
CLAIM_STALE_SECONDS = 60
KEY_MAX_LENGTH = 255
HEADER = "Idempotency-Key"


class CreateKind(enum.StrEnum):
    """What a key created."""

    BATCH = "batch"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A stored key: the request that claimed it and, once created, the object's id."""

    project: str
    key: str
    kind: CreateKind
    request_hash: str
    owner: str
    object_id: str | None
    created_at: int
    expires_at: int


def valid_key(key: str) -> bool:
    """A key is 1 to 255 printable ASCII characters."""
    return 0 < len(key) <= KEY_MAX_LENGTH and all(32 <= ord(ch) < 127 for ch in key)
