"""Requests whose input cannot be read: one error line each, custom_id null, the input line named when known."""

from __future__ import annotations

import orjson

from batchgate.domain.work import ChunkSpec
from batchgate.worker.unread import unread_lines, unread_result


def test_one_line_per_request_without_a_result() -> None:
    spec = ChunkSpec(0, first_line=11, last_line=15, byte_start=0, byte_end=100, requests=5)
    assert unread_lines(spec, {12, 14}) == ([11, 13, 15], True)
    assert unread_lines(spec, set(range(11, 16))) == ([], True)


def test_blank_lines_in_the_range_make_only_the_range_exact() -> None:
    # lines 11-16 hold 4 requests and 2 blank lines; which ones are blank only the lost input knew
    spec = ChunkSpec(0, first_line=11, last_line=16, byte_start=0, byte_end=100, requests=4)
    numbers, exact = unread_lines(spec, {13})
    assert len(numbers) == 3 and 13 not in numbers and not exact
    line = orjson.loads(unread_result(numbers[0], spec, exact, "file-abc", "input_file_unavailable", "Not run.").data)
    assert line["custom_id"] is None and line["response"] is None
    assert line["error"] == {"code": "input_file_unavailable", "message": "Not run. Its custom_id is unknown: one "
                             "of lines 11-16 of input file file-abc could not be read."}
    exact_line = orjson.loads(unread_result(12, spec, True, "file-abc", "batch_cancelled", "Cancelled.").data)
    assert "line 12 of input file file-abc" in exact_line["error"]["message"]
