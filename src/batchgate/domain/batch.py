"""The Batch value and its parts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import PAUSABLE, BatchStatus

ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/responses",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
# What a batch's lines may target: the OpenAI endpoints, and Anthropic's Messages for Message Batches (which only
# the /v1/messages/batches routes create: POST /v1/batches never accepts it).
LINE_ENDPOINTS = (*ENDPOINTS, MESSAGES_ENDPOINT)

class RetryOnly(StrEnum):
    """Which lines of an ended batch a retry runs again (POST /v1/batches/{id}/retry, docs/extensions.md)."""

    FAILED = "failed"  # lines that ran and failed (their error line has a code other than batch_expired/_cancelled)
    UNFINISHED = "unfinished"  # lines that never ran: the batch was cancelled or expired (or failed) first

_WINDOW = re.compile(r"^([1-9][0-9]{0,3})([hd])$")


def window_seconds(window: str) -> int | None:
    """Seconds in a completion window like "24h" or "7d"; None if the text is not a window."""
    m = _WINDOW.match(window)
    if not m:
        return None
    return int(m.group(1)) * (3600 if m.group(2) == "h" else 86400)


@dataclass(frozen=True, slots=True)
class BatchError:
    code: str
    message: str
    param: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_tokens + other.cached_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_response(cls, body: Any) -> Usage:
        """Read the `usage` of any OpenAI endpoint response (chat, completions, embeddings, responses)."""
        usage = body.get("usage") if isinstance(body, dict) else None
        if not isinstance(usage, dict):
            return cls()

        def num(d: Any, *keys: str) -> int:
            for k in keys:
                v = d.get(k) if isinstance(d, dict) else None
                if isinstance(v, int) and not isinstance(v, bool):
                    return v
            return 0

        inp = num(usage, "input_tokens", "prompt_tokens")
        out = num(usage, "output_tokens", "completion_tokens")
        total = num(usage, "total_tokens") or inp + out
        in_details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details")
        out_details = usage.get("output_tokens_details") or usage.get("completion_tokens_details")
        return cls(inp, num(in_details, "cached_tokens"), out, num(out_details, "reasoning_tokens"), total)


@dataclass(frozen=True, slots=True)
class RequestCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0
    not_run: int = 0  # of `failed`, the requests that never ran (the batch was cancelled or expired first)


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """How many of a batch's failed requests share one error code, and one of their messages."""

    code: str
    count: int
    example: str


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    project: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    created_at: int
    expires_at: int
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None
    model: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[BatchError, ...] | None = None
    request_counts: RequestCounts = field(default_factory=RequestCounts)
    usage: Usage = field(default_factory=Usage)
    retries: int = 0  # upstream attempts beyond the first, summed over requests (why a batch is slow)
    error_counts: tuple[ErrorCount, ...] = ()  # the error file grouped by code, most first (once the batch ended)
    estimated_completion_at: int | None = None  # when the planner expects it done (unix s), while in_progress
    at_risk_since: int | None = None  # since when the planner serves it first, at risk of missing its window (unix s)
    paused_at: int | None = None  # when it was paused (unix s); None while it runs. Paused: no new dispatch
    retried_from: str | None = None  # the batch whose failed or unfinished lines this one runs again
    retry_only: RetryOnly | None = None  # which of that batch's lines: those that failed, or those never run

    @property
    def paused(self) -> bool:
        """Paused and not ended: a pause means nothing once the batch stops running (cancel, expiry, the end)."""
        return self.paused_at is not None and self.status in PAUSABLE

    @property
    def at_risk(self) -> bool:
        """Served first because it is at risk of missing its window: only while it runs (a mark left from before
        it stopped, or was paused, means nothing)."""
        return self.at_risk_since is not None and self.status is BatchStatus.IN_PROGRESS and not self.paused
