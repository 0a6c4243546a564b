"""Converting between database rows and domain values (shared by every SQL adapter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from batchgate.domain.batch import Batch, BatchError, ErrorCount, RequestCounts, RetryOnly, Usage
from batchgate.domain.files import StoredFile, Upload, UploadPart, UploadStatus
from batchgate.domain.load import BatchLoad
from batchgate.domain.status import BatchStatus
from batchgate.domain.tally import Tally
from batchgate.domain.work import ChunkSpec

BATCH_COLUMNS = (
    "id, project, endpoint, input_file_id, completion_window, status, created_at, expires_at, metadata, "
    "output_expires_after, model, in_progress_at, finalizing_at, completed_at, failed_at, expired_at, "
    "cancelling_at, cancelled_at, output_file_id, error_file_id, errors, total, completed, failed, "
    "input_tokens, cached_tokens, output_tokens, reasoning_tokens, total_tokens, retries, not_run, error_counts, "
    "estimated_completion_at, paused_at, retried_from, retry_only, at_risk_since"
)
FILE_COLUMNS = "id, project, bytes, created_at, filename, purpose, expires_at"
F_FILE_COLUMNS = ", ".join("f." + c for c in FILE_COLUMNS.split(", "))  # in a join with batches
UPLOAD_COLUMNS = (
    "id, project, bytes, created_at, expires_at, filename, purpose, mime_type, status, file_expires_after, file_id"
)
CHUNK_COLUMNS = "idx, first_line, last_line, byte_start, byte_end, requests"


def batch_from_row(r: Any) -> Batch:
    errors = None
    if r[20] is not None:
        errors = tuple(BatchError(**e) for e in orjson.loads(r[20]))
    return Batch(
        id=r[0], project=r[1], endpoint=r[2], input_file_id=r[3], completion_window=r[4],
        status=BatchStatus(r[5]), created_at=r[6], expires_at=r[7],
        metadata=orjson.loads(r[8]) if r[8] is not None else None,
        output_expires_after=r[9], model=r[10], in_progress_at=r[11], finalizing_at=r[12],
        completed_at=r[13], failed_at=r[14], expired_at=r[15], cancelling_at=r[16], cancelled_at=r[17],
        output_file_id=r[18], error_file_id=r[19], errors=errors,
        request_counts=RequestCounts(r[21], r[22], r[23], r[30]),
        usage=Usage(r[24], r[25], r[26], r[27], r[28]), retries=r[29],
        error_counts=tuple(ErrorCount(*e) for e in orjson.loads(r[31])) if r[31] is not None else (),
        estimated_completion_at=r[32], paused_at=r[33], retried_from=r[34],
        retry_only=RetryOnly(r[35]) if r[35] is not None else None, at_risk_since=r[36],
    )


def batch_to_params(b: Batch) -> tuple[Any, ...]:
    errors = orjson.dumps([_error_dict(e) for e in b.errors]) if b.errors is not None else None
    u, c = b.usage, b.request_counts
    return (
        b.id, b.project, b.endpoint, b.input_file_id, b.completion_window, b.status.value, b.created_at,
        b.expires_at, orjson.dumps(b.metadata).decode() if b.metadata is not None else None,
        b.output_expires_after, b.model, b.in_progress_at, b.finalizing_at, b.completed_at, b.failed_at,
        b.expired_at, b.cancelling_at, b.cancelled_at, b.output_file_id, b.error_file_id,
        errors.decode() if errors is not None else None, c.total, c.completed, c.failed,
        u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens, u.total_tokens, b.retries,
        c.not_run, error_counts_json(b.error_counts), b.estimated_completion_at, b.paused_at, b.retried_from,
        b.retry_only.value if b.retry_only is not None else None, b.at_risk_since,
    )


def error_counts_json(counts: Sequence[ErrorCount]) -> str | None:
    """As [code, count, example] triples; None when there are none (a batch that has not ended, or had none)."""
    return orjson.dumps([(e.code, e.count, e.example) for e in counts]).decode() if counts else None


def errors_json(errors: Any) -> str:
    return orjson.dumps([_error_dict(e) for e in errors]).decode()


def _error_dict(e: BatchError) -> dict[str, Any]:
    return {"code": e.code, "message": e.message, "param": e.param, "line": e.line}


def file_from_row(r: Any) -> StoredFile:
    return StoredFile(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


def upload_from_row(r: Any) -> Upload:
    return Upload(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], UploadStatus(r[8]), r[9], r[10])


def part_from_row(r: Any) -> UploadPart:
    return UploadPart(r[0], r[1], r[2], r[3], r[4])


def chunk_from_row(r: Any) -> ChunkSpec:
    return ChunkSpec(r[0], r[1], r[2], r[3], r[4], r[5])


def tally_params(t: Tally) -> tuple[int, ...]:
    """ADD_COUNTS's increments, in column order: completed, failed, the five token counts, retries."""
    u = t.usage
    return (t.completed, t.failed, u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens,
            u.total_tokens, t.retries)


def load_from_row(r: Any) -> BatchLoad:
    """A SCHEDULE_SNAPSHOT row: the batch's columns, its done count, chunks leased and open, its project's weight."""
    return BatchLoad(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), int(r[9]), float(r[10]))


def merged_wants(wants: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """claim_chunks_of's wants with each batch once, at its first place, for the sum of its counts, and
    without the batches wanted for nothing."""
    merged: dict[str, int] = {}
    for batch_id, n in wants:
        merged[batch_id] = merged.get(batch_id, 0) + max(n, 0)
    return [(batch_id, n) for batch_id, n in merged.items() if n > 0]
