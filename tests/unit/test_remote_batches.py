"""`batchgate batches get` shows the estimated completion of a running batch, and since when it has gone first at
risk of missing its window: the server's own batch object (the extension fields estimated_completion_at and
at_risk_since) read by the official SDK, printed as the command prints it."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from openai.types import Batch as SdkBatch

from batchgate.domain.batch import Batch, RequestCounts
from batchgate.domain.status import BatchStatus
from batchgate.protocol.objects import batch_object
from batchgate.remote_batches import _print_batch, _status, at_risk_since, estimate


def domain_batch(status: BatchStatus, estimated: int | None) -> Batch:
    return Batch("batch_1", "p", "/v1/chat/completions", "file-x", "24h", status, created_at=1000, expires_at=90_000,
                 request_counts=RequestCounts(100, 10, 0), estimated_completion_at=estimated)


def sdk_batch(status: BatchStatus, estimated: int | None) -> SdkBatch:
    return SdkBatch.model_validate(json.loads(json.dumps(batch_object(domain_batch(status, estimated)))))


def test_a_running_batch_shows_its_estimate_and_the_time_left(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    at = int(time.time()) + 3600 + 120
    b = sdk_batch(BatchStatus.IN_PROGRESS, at)
    assert estimate(b, at - 3720) == f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} (in 1h 02m)"
    assert estimate(b, at + 5).endswith("(overdue by 5s)")
    _print_batch(b, as_json=False)
    shown = capsys.readouterr().out
    assert "estimated_completion_at" in shown and time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) in shown
    _print_batch(b, as_json=True)
    assert json.loads(capsys.readouterr().out)["estimated_completion_at"] == at


def test_no_estimate_yet_says_so_and_a_finished_batch_has_none(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _print_batch(sdk_batch(BatchStatus.IN_PROGRESS, None), as_json=False)
    assert "not yet: the scheduler estimates" in capsys.readouterr().out
    finished = sdk_batch(BatchStatus.COMPLETED, 5000)  # a stale estimate is never shown once it stopped
    _print_batch(finished, as_json=False)
    assert "estimated_completion_at" not in capsys.readouterr().out
    _print_batch(finished, as_json=True)
    assert json.loads(capsys.readouterr().out)["estimated_completion_at"] is None


def test_a_batch_at_risk_shows_since_when_in_get_and_list(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    since = int(time.time()) - 60
    at_risk = dataclasses.replace(domain_batch(BatchStatus.IN_PROGRESS, None), at_risk_since=since)
    b = SdkBatch.model_validate(json.loads(json.dumps(batch_object(at_risk))))
    assert at_risk_since(b) == since and _status(b) == "in_progress (at risk)"
    _print_batch(b, as_json=False)
    shown = capsys.readouterr().out
    assert "at_risk_since" in shown and "at risk of missing its window, it goes first" in shown
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(since)) in shown
    _print_batch(b, as_json=True)
    assert json.loads(capsys.readouterr().out)["at_risk_since"] == since
    ended = sdk_batch(BatchStatus.COMPLETED, None)
    assert at_risk_since(ended) is None and _status(ended) == "completed"
    _print_batch(ended, as_json=False)
    assert "at_risk_since" not in capsys.readouterr().out
