"""What the pages show, computed from domain values: progress, throughput, time left, the timeline.

Pure functions of a Batch and the current time, so the arithmetic is tested without a browser."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from batchgate.domain.batch import Batch, BatchError
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import CANCELLABLE, BatchStatus


@dataclass(frozen=True, slots=True)
class Progress:
    done: int  # requests that ran: completed, or failed with a result (an upstream error, a timeout after retries)
    total: int
    percent: float  # 100 * done / total; 0 while the total is unknown (validating)
    rate: float | None  # requests per second since in_progress_at; None before any request ran
    eta_seconds: float | None  # the scheduler's estimate, else at the rate so far; None when not running or no rate
    failed: int = 0  # requests that ran and failed
    not_run: int = 0  # requests that never ran: the batch was cancelled or expired first


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """The validation errors of one code: how many, on which lines, and the first one's message."""

    code: str
    count: int
    example: str
    lines: tuple[int, ...]  # empty for an error about the whole file


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    status: BatchStatus
    at: int


def progress(batch: Batch, now: float) -> Progress:
    """Progress counts the requests that ran, not those a cancel or the end of the window settled: a cancelled
    batch whose 30 of 100 requests ran stands at 30%."""
    counts = batch.request_counts
    failed = counts.failed - counts.not_run
    done = counts.completed + failed
    if counts.total:
        percent = 100.0 * done / counts.total
    else:  # nothing to run: done if it ended by validation, not if it was cancelled or expired first
        percent = 100.0 if batch.status in (BatchStatus.COMPLETED, BatchStatus.FAILED) else 0.0
    rate = eta = None
    if batch.in_progress_at is not None and done:
        # A finished run's rate is measured up to when its last request finished, not up to now.
        end = batch.finalizing_at or batch.cancelling_at or batch.expired_at or batch.failed_at or now
        elapsed = max(end - batch.in_progress_at, 1.0)
        rate = done / elapsed
        if batch.status is BatchStatus.IN_PROGRESS and counts.total > done:
            eta = (counts.total - done) / rate
    if batch.status is BatchStatus.IN_PROGRESS and batch.estimated_completion_at is not None:
        # The scheduler's estimate knows the batch's share of the upstream, which its rate so far does not.
        eta = max(batch.estimated_completion_at - now, 0.0)
    return Progress(done, counts.total, min(percent, 100.0), rate, eta, failed, counts.not_run)


def error_groups(errors: tuple[BatchError, ...] | None) -> list[ErrorGroup]:
    """Validation errors grouped by code, the most frequent first (ties in the order they first appear)."""
    found: dict[str, list[BatchError]] = {}
    for e in errors or ():
        found.setdefault(e.code, []).append(e)
    groups = [ErrorGroup(code, len(es), es[0].message, tuple(e.line for e in es if e.line is not None))
              for code, es in found.items()]
    order = {g.code: i for i, g in enumerate(groups)}
    return sorted(groups, key=lambda g: (-g.count, order[g.code]))


def lines(numbers: tuple[int, ...], shown: int = 10) -> str:
    """'3, 8, 13' or, past `shown`, '3, 8, 13, … (40 lines)'."""
    text = ", ".join(str(n) for n in numbers[:shown])
    return text if len(numbers) <= shown else f"{text}, … ({len(numbers)} lines)"


def timeline(batch: Batch) -> list[TimelineEntry]:
    """Each status the batch entered, in order, with when (from the Batch's *_at fields)."""
    entries = [TimelineEntry(BatchStatus.VALIDATING, batch.created_at)]
    for status in BatchStatus:
        name = status.timestamp_field
        at = getattr(batch, name) if name is not None else None
        if isinstance(at, int):
            entries.append(TimelineEntry(status, at))
    order = list(BatchStatus)
    return sorted(entries, key=lambda e: (e.at, order.index(e.status)))


def cancellable(batch: Batch) -> bool:
    return batch.status in CANCELLABLE


def retryable(batch: Batch) -> tuple[int, int]:
    """How many of an ended batch's lines a retry would run: (failed, unfinished); (0, 0) when it cannot retry."""
    if batch.status not in (BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED) or \
            batch.endpoint == MESSAGES_ENDPOINT:  # a Message Batch is run again by creating one
        return 0, 0
    c = batch.request_counts
    return c.failed - c.not_run, c.not_run


# -- formatting (Jinja filters) -------------------------------------------------------------------------------
def when(ts: int | float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def size(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def rate(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.1f} req/s" if r < 100 else f"{r:,.0f} req/s"
