"""Domain values -> OpenAI JSON objects. Every key is always present (null when unset)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchgate.domain.batch import Batch
from batchgate.domain.files import StoredFile, Upload, UploadPart
from batchgate.domain.status import BatchStatus


def file_object(f: StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": f.created_at,
        "expires_at": f.expires_at,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
        "status_details": None,
    }


def file_deleted(file_id: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "deleted": True}


def upload_object(u: Upload, now: int, file: StoredFile | None = None) -> dict[str, Any]:
    return {
        "id": u.id,
        "object": "upload",
        "bytes": u.bytes,
        "created_at": u.created_at,
        "expires_at": u.expires_at,
        "filename": u.filename,
        "purpose": u.purpose,
        "status": u.effective_status(now).value,
        "file": file_object(file) if file is not None else None,
    }


def part_object(p: UploadPart) -> dict[str, Any]:
    return {"id": p.id, "object": "upload.part", "created_at": p.created_at, "upload_id": p.upload_id}


def batch_object(b: Batch) -> dict[str, Any]:
    u = b.usage
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "model": b.model,
        "errors": None if b.errors is None else {
            "object": "list",
            "data": [{"code": e.code, "message": e.message, "param": e.param, "line": e.line} for e in b.errors],
        },
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status.value,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": b.created_at,
        "in_progress_at": b.in_progress_at,
        "expires_at": b.expires_at,
        "finalizing_at": b.finalizing_at,
        "completed_at": b.completed_at,
        "failed_at": b.failed_at,
        "expired_at": b.expired_at,
        "cancelling_at": b.cancelling_at,
        "cancelled_at": b.cancelled_at,
        "request_counts": {
            "total": b.request_counts.total,
            "completed": b.request_counts.completed,
            "failed": b.request_counts.failed,
        },
        # Extension: when the scheduler expects the batch to finish (unix seconds), from its measured rate at its
        # current share; null until the planner has written one, and whenever the batch is not in_progress.
        "estimated_completion_at": estimated_completion(b),
        # Extension: since when the scheduler has served the batch first, at risk of missing its window (unix
        # seconds); null while it is not, and whenever the batch is not running (docs/extensions.md).
        "at_risk_since": at_risk_since(b),
        "usage": {
            "input_tokens": u.input_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": u.output_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.total_tokens,
        },
        "metadata": b.metadata,
        # Extension (the SDK keeps unknown keys): upstream attempts beyond the first, i.e. why a batch is slow.
        "batchgate": {"retries": b.retries},
        # Extensions (docs/extensions.md): a paused batch keeps its status (in_progress) and says so here; a retry
        # names the batch whose lines it runs again, and which of them.
        "paused": b.paused,
        "paused_at": b.paused_at if b.paused else None,
        "retried_from": b.retried_from,
        "retry_only": b.retry_only.value if b.retry_only is not None else None,
    }


def estimated_completion(b: Batch) -> int | None:
    """The batch's estimated completion while it runs; None before the first estimate and once it stopped."""
    return b.estimated_completion_at if b.status is BatchStatus.IN_PROGRESS else None


def at_risk_since(b: Batch) -> int | None:
    """Since when the batch has gone first, at risk of missing its window; None when it is not, or not running."""
    return b.at_risk_since if b.at_risk else None


def list_object(data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
