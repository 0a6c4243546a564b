"""Rows of the live-batch tables (the recording sequence, idempotency keys) to domain values, for both adapters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchgate.domain.idempotency import CreateKind, IdempotencyRecord
from batchgate.domain.results_feed import FeedLine, ResultHead
from batchgate.domain.status import BatchStatus


def head_from_row(r: Sequence[Any]) -> ResultHead:
    return ResultHead(r[0], r[1], BatchStatus(r[2]), int(r[3]), bool(r[4]), r[5], r[6])


def line_from_row(r: Sequence[Any]) -> FeedLine:
    return FeedLine(int(r[0]), bool(r[1]), bytes(r[2]))


def key_from_row(r: Sequence[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(r[0], r[1], CreateKind(r[2]), r[3], r[4], r[5], int(r[6]), int(r[7]))


def key_params(k: IdempotencyRecord) -> tuple[Any, ...]:
    return (k.project, k.key, k.kind.value, k.request_hash, k.owner, k.object_id, k.created_at, k.expires_at)


def take_over_params(k: IdempotencyRecord, now: int, stale_before: int) -> tuple[Any, ...]:
    return (k.kind.value, k.request_hash, k.owner, k.created_at, k.expires_at, k.project, k.key, now, stale_before)
