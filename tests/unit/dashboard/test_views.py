"""The numbers the pages show: progress, throughput, time left, the timeline, sizes and durations."""

from __future__ import annotations

import dataclasses

from batchgate.dashboard import views
from batchgate.domain.batch import Batch, BatchError, RequestCounts
from batchgate.domain.status import BatchStatus

BASE = Batch("batch_1", "p", "/v1/chat/completions", "file-1", "24h", BatchStatus.VALIDATING, 1000, 90_000)


def running(completed: int, failed: int, total: int, **kw: object) -> Batch:
    return dataclasses.replace(BASE, status=BatchStatus.IN_PROGRESS, in_progress_at=1010,
                               request_counts=RequestCounts(total, completed, failed), **kw)  # type: ignore[arg-type]


def test_validating_has_no_progress_yet() -> None:
    p = views.progress(BASE, now=1005)
    assert (p.done, p.total, p.percent, p.rate, p.eta_seconds) == (0, 0, 0.0, None, None)


def test_running_rate_and_time_left() -> None:
    p = views.progress(running(30, 10, 100), now=1030)  # 40 done in 20 s
    assert p.percent == 40.0 and p.rate == 2.0 and p.eta_seconds == 30.0


def test_the_schedulers_estimate_is_the_time_left_while_running() -> None:
    p = views.progress(running(30, 10, 100, estimated_completion_at=1130), now=1030)
    assert p.rate == 2.0 and p.eta_seconds == 100.0  # not the 30 s of its rate so far: its share is smaller now
    assert views.progress(running(30, 10, 100, estimated_completion_at=1000), now=1030).eta_seconds == 0.0
    stopped = dataclasses.replace(running(30, 10, 100, estimated_completion_at=1130), status=BatchStatus.CANCELLING,
                                  cancelling_at=1030)
    assert views.progress(stopped, now=1040).eta_seconds is None


def test_a_batch_is_shown_at_risk_only_while_it_runs_unpaused() -> None:
    assert running(30, 10, 100, at_risk_since=1020).at_risk
    assert not running(30, 10, 100).at_risk
    assert not running(30, 10, 100, at_risk_since=1020, paused_at=1025).at_risk
    stopped = dataclasses.replace(running(30, 10, 100, at_risk_since=1020), status=BatchStatus.CANCELLING)
    assert not stopped.at_risk


def test_finished_rate_stops_at_finalizing() -> None:
    b = dataclasses.replace(running(100, 0, 100), status=BatchStatus.COMPLETED, finalizing_at=1060, completed_at=1061)
    p = views.progress(b, now=5000)
    assert p.percent == 100.0 and p.rate == 2.0 and p.eta_seconds is None


def test_failed_at_validation_is_complete_without_requests() -> None:
    b = dataclasses.replace(BASE, status=BatchStatus.FAILED, failed_at=1001)
    assert views.progress(b, now=2000).percent == 100.0
    assert [e.status for e in views.timeline(b)] == [BatchStatus.VALIDATING, BatchStatus.FAILED]


def test_progress_counts_the_requests_that_ran_not_those_a_cancel_or_expiry_settled() -> None:
    # 100 requests: 25 completed and 5 failed upstream before the cancel; 70 never ran (counted as failed too).
    cancelled = dataclasses.replace(running(25, 75, 100), status=BatchStatus.CANCELLED, cancelling_at=1040,
                                    cancelled_at=1041, request_counts=RequestCounts(100, 25, 75, not_run=70))
    p = views.progress(cancelled, now=5000)
    assert (p.done, p.total, p.percent, p.failed, p.not_run) == (30, 100, 30.0, 5, 70)
    assert p.rate == 1.0 and p.eta_seconds is None  # 30 ran in the 30 s before the cancel
    expired = dataclasses.replace(cancelled, status=BatchStatus.EXPIRED, expired_at=1100,
                                  request_counts=RequestCounts(100, 40, 60, not_run=60))
    assert views.progress(expired, now=5000).percent == 40.0
    never_started = dataclasses.replace(BASE, status=BatchStatus.CANCELLED, cancelled_at=1001)
    assert views.progress(never_started, now=5000).percent == 0.0  # cancelled while validating: nothing ran
    cancelling = dataclasses.replace(running(25, 5, 100), status=BatchStatus.CANCELLING, cancelling_at=1040)
    assert views.progress(cancelling, now=1045).percent == 30.0  # live counts hold only what ran


def test_validation_errors_grouped_by_code_most_first() -> None:
    errors = (
        BatchError("invalid_url", "Wrong URL.", "url", 1), BatchError("model_mismatch", "Other model.", None, 2),
        BatchError("invalid_url", "Wrong URL.", "url", 3), BatchError("invalid_url", "Wrong URL.", "url", 4),
        BatchError("duplicate_custom_id", "Again.", None, 5), BatchError("too_many_errors", "9 more lines."),
    )
    assert views.error_groups(errors) == [
        views.ErrorGroup("invalid_url", 3, "Wrong URL.", (1, 3, 4)),
        views.ErrorGroup("model_mismatch", 1, "Other model.", (2,)),
        views.ErrorGroup("duplicate_custom_id", 1, "Again.", (5,)),
        views.ErrorGroup("too_many_errors", 1, "9 more lines.", ()),
    ]
    assert views.error_groups(None) == []
    assert views.lines((1, 2, 3)) == "1, 2, 3"
    assert views.lines(tuple(range(1, 41)), shown=3) == "1, 2, 3, … (40 lines)"


def test_timeline_orders_each_status_change() -> None:
    b = dataclasses.replace(running(5, 0, 10), status=BatchStatus.CANCELLED, cancelling_at=1020, cancelled_at=1021)
    assert [(e.status, e.at) for e in views.timeline(b)] == [
        (BatchStatus.VALIDATING, 1000), (BatchStatus.IN_PROGRESS, 1010), (BatchStatus.CANCELLING, 1020),
        (BatchStatus.CANCELLED, 1021),
    ]
    assert not views.cancellable(b) and views.cancellable(running(0, 0, 1))


def test_formatting() -> None:
    assert [views.duration(s) for s in (None, 4.4, 75, 3725, 90061)] == ["", "4s", "1m 15s", "1h 02m", "1d 1h"]
    assert [views.size(n) for n in (None, 0, 1023, 1536, 5 * 1024**3)] == ["", "0 B", "1023 B", "1.5 KiB", "5.0 GiB"]
    assert views.rate(None) == "" and views.rate(2.25) == "2.2 req/s" and views.rate(1234.5) == "1,234 req/s"
    assert views.when(0) == "1970-01-01 00:00:00 UTC" and views.when(None) == ""
