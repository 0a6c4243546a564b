import random

from batchgate.domain.retry import RetryPolicy, is_retryable
from batchgate.domain.status import TERMINAL, TRANSITIONS, BatchStatus, can_transition, sources_of


def test_terminal_states_have_no_way_out() -> None:
    for s in TERMINAL:
        assert TRANSITIONS[s] == frozenset()
        assert s.terminal


def test_every_status_has_a_transition_row_and_timestamp_field() -> None:
    assert set(TRANSITIONS) == set(BatchStatus)
    assert BatchStatus.VALIDATING.timestamp_field is None
    assert BatchStatus.CANCELLING.timestamp_field == "cancelling_at"


def test_cancel_paths() -> None:
    assert can_transition(BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING)
    assert can_transition(BatchStatus.CANCELLING, BatchStatus.CANCELLED)
    assert not can_transition(BatchStatus.COMPLETED, BatchStatus.CANCELLING)
    assert sources_of(BatchStatus.COMPLETED) == {BatchStatus.FINALIZING}


def test_retry_classification() -> None:
    assert all(is_retryable(s) for s in (429, 500, 502, 503, 504, 408))
    assert not any(is_retryable(s) for s in (400, 401, 403, 404, 422))


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    p = RetryPolicy(max_attempts=6, base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(1)
    delays = [p.delay(a, rng=rng) for a in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert all(d <= 8.0 for d in delays)
    assert delays[5] >= 4.0
    assert 3.0 <= p.delay(1, retry_after=3.0, rng=rng) <= 3.3
    assert p.gives_up_after(6) and not p.gives_up_after(5)
