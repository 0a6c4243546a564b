"""The follower's cursor (domain/results_feed.py) and the Idempotency-Key's shape (domain/idempotency.py)."""

from __future__ import annotations

from batchgate.domain.idempotency import valid_key
from batchgate.domain.results_feed import FeedLine, FeedPage, ResultHead, next_cursor
from batchgate.domain.status import BatchStatus


def head(recorded: int, status: BatchStatus = BatchStatus.IN_PROGRESS) -> ResultHead:
    return ResultHead("batch_1", "p", status, recorded, False, None, None)


def lines(*seqs: int) -> list[FeedLine]:
    return [FeedLine(s, True, b"{}") for s in seqs]


def test_a_full_page_stops_at_its_last_line() -> None:
    assert next_cursor(head(100), 10, lines(11, 12, 15), limit=3) == (15, True)


def test_a_page_that_is_not_full_moves_to_the_head_over_gaps() -> None:
    # numbers 13, 14 and 16..20 were given to duplicates: nothing will ever be stored under them
    assert next_cursor(head(20), 10, lines(11, 12, 15), limit=5) == (20, False)
    assert next_cursor(head(20), 10, [], limit=5) == (20, False)


def test_lines_newer_than_the_head_move_the_cursor_past_it() -> None:
    assert next_cursor(head(12), 10, lines(11, 12, 13), limit=5) == (13, False)


def test_the_cursor_never_goes_back() -> None:
    assert next_cursor(head(5), 9, [], limit=5) == (9, False)


def test_done_once_the_batch_ended_and_nothing_follows() -> None:
    ended = head(20, BatchStatus.COMPLETED)
    assert FeedPage(ended, [], 20, False).done
    assert not FeedPage(ended, lines(20), 20, False).done
    assert not FeedPage(ended, [], 20, True).done
    assert not FeedPage(head(20), [], 20, False).done


def test_keys_are_1_to_255_printable_ascii_characters() -> None:
    assert valid_key("a") and valid_key("x" * 255) and valid_key("nightly run 2026-12-07 #3")
    assert not valid_key("") and not valid_key("x" * 256) and not valid_key("caf\u00e9") and not valid_key("a\nb")
