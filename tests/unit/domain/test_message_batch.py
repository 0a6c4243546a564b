"""A batch as one of Anthropic's Message Batches (domain/message_batch.py)."""

from __future__ import annotations

import pytest

from batchgate.domain.batch import Batch, BatchError, RequestCounts
from batchgate.domain.message_batch import processing_status, request_counts, result_line, unrun_result
from batchgate.domain.prefix import NO_PREFIX, prefix_key
from batchgate.domain.status import BatchStatus

NONE_YET = RequestCounts()


def batch(status: BatchStatus, counts: RequestCounts = NONE_YET, declared: int = 10) -> Batch:
    return Batch("msgbatch_1", "p", "/v1/messages", "file-1", "24h", status, 0, 86400,
                 metadata={"requests": str(declared)}, request_counts=counts)


@pytest.mark.parametrize(("status", "shown"), [
    (BatchStatus.VALIDATING, "in_progress"), (BatchStatus.IN_PROGRESS, "in_progress"),
    (BatchStatus.FINALIZING, "in_progress"), (BatchStatus.CANCELLING, "canceling"),
    (BatchStatus.COMPLETED, "ended"), (BatchStatus.FAILED, "ended"), (BatchStatus.EXPIRED, "ended"),
    (BatchStatus.CANCELLED, "ended"),
])
def test_processing_status(status: BatchStatus, shown: str) -> None:
    assert processing_status(status) == shown


def test_counts_are_live_and_add_up() -> None:
    assert request_counts(batch(BatchStatus.VALIDATING)) == {
        "processing": 10, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    running = batch(BatchStatus.IN_PROGRESS, RequestCounts(10, 4, 1))
    assert request_counts(running) == {"processing": 5, "succeeded": 4, "errored": 1, "canceled": 0, "expired": 0}
    cancelled = batch(BatchStatus.CANCELLED, RequestCounts(10, 4, 6, not_run=5))
    assert request_counts(cancelled) == {"processing": 0, "succeeded": 4, "errored": 1, "canceled": 5, "expired": 0}
    expired = batch(BatchStatus.EXPIRED, RequestCounts(10, 7, 3, not_run=3))
    assert request_counts(expired) == {"processing": 0, "succeeded": 7, "errored": 0, "canceled": 0, "expired": 3}
    cancelled_early = batch(BatchStatus.CANCELLED)  # before validation: nothing ran
    assert request_counts(cancelled_early)["canceled"] == 10
    failed = batch(BatchStatus.FAILED)
    assert request_counts(failed) == {"processing": 0, "succeeded": 0, "errored": 10, "canceled": 0, "expired": 0}


def test_result_lines() -> None:
    ok = {"id": "r", "custom_id": "a", "response": {"status_code": 200, "request_id": "req_1",
                                                      "body": {"type": "message"}}, "error": None}
    assert result_line(ok) == {"custom_id": "a", "result": {"type": "succeeded", "message": {"type": "message"}}}
    http_error = {"id": "r", "custom_id": "b", "response": {
        "status_code": 400, "request_id": "req_2", "body": {"error": {"message": "nope", "type": "x"}}}, "error": None}
    assert result_line(http_error) == {"custom_id": "b", "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": "invalid_request_error", "message": "nope"}, "request_id": "req_2"}}}
    cancelled = {"custom_id": "c", "response": None, "error": {"code": "batch_cancelled", "message": "x"}}
    assert result_line(cancelled) == {"custom_id": "c", "result": {"type": "canceled"}}
    expired = {"custom_id": "d", "response": None, "error": {"code": "batch_expired", "message": "x"}}
    assert result_line(expired) == {"custom_id": "d", "result": {"type": "expired"}}
    timeout = {"custom_id": "e", "response": None, "error": {"code": "request_timeout", "message": "too slow"}}
    assert result_line(timeout)["result"] == {"type": "errored", "error": {
        "type": "error", "error": {"type": "api_error", "message": "too slow"}}}


def test_requests_of_a_batch_without_result_files() -> None:
    failed = Batch("msgbatch_1", "p", "/v1/messages", "f", "24h", BatchStatus.FAILED, 0, 1,
                   errors=(BatchError("model_not_found", "no model 'x'"),))
    assert unrun_result("a", failed)["result"]["error"]["error"] == {
        "type": "invalid_request_error", "message": "no model 'x'"}
    assert unrun_result("a", batch(BatchStatus.CANCELLED))["result"] == {"type": "canceled"}
    assert unrun_result("a", batch(BatchStatus.EXPIRED))["result"] == {"type": "expired"}


def test_messages_share_a_prefix_key_by_system_prompt_and_leading_turns() -> None:
    def body(system: object, *texts: str) -> dict[str, object]:
        return {"model": "m", "max_tokens": 1, "system": system,
                "messages": [{"role": "user", "content": t} for t in texts]}

    a, b = prefix_key("/v1/messages", body("be brief", "x")), prefix_key("/v1/messages", body("be brief", "y"))
    assert a == b != NO_PREFIX
    assert prefix_key("/v1/messages", body("be long", "x")) != a
    assert prefix_key("/v1/messages", body(None, "only")) == NO_PREFIX
    assert prefix_key("/v1/messages", body(None, "lead", "x")) == prefix_key("/v1/messages", body(None, "lead", "y"))
