"""Grouping a batch's failed requests by error code: counts, one message each, bounded in size."""

from __future__ import annotations

import orjson

from batchgate.domain.batch import ErrorCount
from batchgate.domain.error_tally import MAX_CODES, MAX_EXAMPLE_CHARS, OTHER, ErrorTally
from batchgate.upstream.executor import UpstreamResponse
from batchgate.worker.outcome import CANCELLED_MESSAGE, error_of, error_result, response_result


def test_counts_by_code_most_first_keeping_the_first_message() -> None:
    tally = ErrorTally()
    for code, message in [("rate_limit_exceeded", "Slow down (1)."), ("server_error", "Oops."),
                          ("rate_limit_exceeded", "Slow down (2)."), ("rate_limit_exceeded", "Slow down (3).")]:
        tally.add(code, message)
    assert tally.counts() == (ErrorCount("rate_limit_exceeded", 3, "Slow down (1)."),
                              ErrorCount("server_error", 1, "Oops."))
    assert ErrorTally().counts() == ()


def test_codes_past_the_cap_are_counted_as_other_and_messages_are_shortened() -> None:
    tally = ErrorTally()
    for i in range(MAX_CODES + 5):
        tally.add(f"code_{i:02d}", "x" * 1000)
    counts = tally.counts()
    assert len(counts) == MAX_CODES + 1
    assert counts[0] == ErrorCount(OTHER, 5, "x" * (MAX_EXAMPLE_CHARS - 1) + "…")
    assert sum(c.count for c in counts) == MAX_CODES + 5


def test_the_code_of_each_kind_of_error_line() -> None:
    def answered(status: int, body: object) -> bytes:
        return response_result(1, "c", UpstreamResponse(status, orjson.dumps(body)), 0).data

    envelope = {"error": {"message": "Too long.", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    assert error_of(answered(400, envelope)) == ("context_length_exceeded", "Too long.")
    assert error_of(answered(500, {"error": {"message": "Boom.", "type": "server_error", "code": None}})) == (
        "server_error", "Boom.")
    assert error_of(answered(502, {"detail": "bad gateway"})) == ("http_502", "")
    assert error_of(response_result(1, "c", UpstreamResponse(503, b"<html>down</html>"), 0).data) == (
        "upstream_error", "<html>down</html>")
    assert error_of(error_result(1, "c", "batch_cancelled", CANCELLED_MESSAGE).data) == (
        "batch_cancelled", CANCELLED_MESSAGE)
