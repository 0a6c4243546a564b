"""The tally both store adapters add to a batch when results are recorded (domain/tally.py)."""

from __future__ import annotations

from batchgate.domain.batch import Usage
from batchgate.domain.tally import Tally, tally
from batchgate.domain.work import RequestResult


def result(line: int, ok: bool = True, tokens: int = 1, retries: int = 0) -> RequestResult:
    return RequestResult(line, ok, b"{}", Usage(tokens, 0, tokens, 0, 2 * tokens), retries)


def test_counts_completed_failed_tokens_and_retries_of_new_lines() -> None:
    got = tally([result(1), result(2, ok=False, tokens=3, retries=2), result(3, retries=1)], {1, 2, 3})
    assert got == Tally(2, 1, Usage(5, 0, 5, 0, 10), 3)


def test_lines_recorded_before_are_not_counted() -> None:
    assert tally([result(1), result(2)], {2}) == Tally(1, 0, Usage(1, 0, 1, 0, 2), 0)
    assert tally([result(1)], set()) == Tally()


def test_a_line_given_twice_counts_once_as_its_first_result() -> None:
    assert tally([result(7, ok=False, tokens=4), result(7, ok=True, tokens=9)], [7]) == Tally(
        0, 1, Usage(4, 0, 4, 0, 8), 0)
