"""A batch seen as one of Anthropic's Message Batches: its processing status, its request counts, and each result
line of its output and error files as one of Anthropic's result lines. Pure."""

from __future__ import annotations

import re
from typing import Any

import orjson

from batchgate.domain.batch import Batch
from batchgate.domain.messages import error_body, error_from_answer
from batchgate.domain.status import BatchStatus

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Anthropic's rule for a request's custom_id
DECLARED_KEY = "requests"  # metadata: how many requests the batch was created with (known before validation)


def processing_status(status: BatchStatus) -> str:
    """in_progress, canceling or ended."""
    if status is BatchStatus.CANCELLING:
        return "canceling"
    return "ended" if status.terminal else "in_progress"


def declared_requests(b: Batch) -> int:
    """The number of requests the batch was created with (its counts before validation has run)."""
    value = (b.metadata or {}).get(DECLARED_KEY, "")
    return int(value) if value.isdigit() else b.request_counts.total


def request_counts(b: Batch) -> dict[str, int]:
    """Anthropic's counts, live: requests without a result are `processing` until the batch ends; then those
    never run are `canceled` or `expired` (or `errored`, for a batch that failed as a whole)."""
    c = b.request_counts
    total = max(c.total, declared_requests(b))
    counts = {"processing": 0, "succeeded": c.completed, "errored": c.failed - c.not_run, "canceled": 0, "expired": 0}
    if b.status is BatchStatus.FAILED:
        counts["errored"] = total - c.completed
    elif b.status.terminal:
        unrun = total - c.completed - (c.failed - c.not_run)
        counts["canceled" if b.status is BatchStatus.CANCELLED else "expired"] = unrun
    else:
        counts["processing"] = total - c.completed - c.failed
    return counts


def result_line(line: dict[str, Any]) -> dict[str, Any]:
    """One line of a batch's output or error file as Anthropic's result line."""
    out: dict[str, Any] = {"custom_id": line.get("custom_id"), "result": None}
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict):
        status = response.get("status_code")
        body = response.get("body")
        if isinstance(status, int) and 200 <= status < 300:
            out["result"] = {"type": "succeeded", "message": body}
        else:
            parsed = error_from_answer(status if isinstance(status, int) else 500, _json_bytes(body))
            if response.get("request_id"):
                parsed = {**parsed, "request_id": response["request_id"]}
            out["result"] = {"type": "errored", "error": parsed}
        return out
    code = error.get("code") if isinstance(error, dict) else None
    if code == "batch_cancelled":
        out["result"] = {"type": "canceled"}
    elif code == "batch_expired":
        out["result"] = {"type": "expired"}
    else:
        message = error.get("message") if isinstance(error, dict) else None
        out["result"] = {"type": "errored", "error": error_body(500, str(message or code or "The request failed."))}
    return out


def unrun_result(custom_id: str, b: Batch) -> dict[str, Any]:
    """The result line of a request that never ran in a batch that ended with no result files (it failed as a
    whole, or was cancelled or expired before it started)."""
    if b.status is BatchStatus.CANCELLED:
        return {"custom_id": custom_id, "result": {"type": "canceled"}}
    if b.status is BatchStatus.EXPIRED:
        return {"custom_id": custom_id, "result": {"type": "expired"}}
    message = b.errors[0].message if b.errors else "The batch failed before this request ran."
    return {"custom_id": custom_id, "result": {"type": "errored", "error": error_body(400, message)}}


def _json_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return orjson.dumps(body)
