"""The at-risk batches' keys at the gate: deadline first, then the plan's order (creation order), so the gate
serves equal deadlines in the order the estimates assume, whenever each flow last joined its queue."""

from __future__ import annotations

from batchgate.domain.load import BatchLoad
from batchgate.worker.planner import _urgent_keys


def load(batch_id: str, seq: int, expires_at: int) -> BatchLoad:
    return BatchLoad(batch_id, "p", "m", seq, 0, expires_at, 100, 0, 0, 0, 1.0)


def test_equal_deadlines_keep_the_plans_order_and_never_cross_a_later_deadline() -> None:
    loads = [load("late", 1, 70), load("second", 3, 60), load("first", 2, 60), load("calm", 4, 50)]
    keys = _urgent_keys(loads, {"late": 70, "second": 60, "first": 60})
    assert sorted(keys, key=keys.__getitem__) == ["first", "second", "late"]
    assert keys["first"] == 60.0  # a deadline without a tie is the deadline itself
    assert 60.0 < keys["second"] < 61.0
    assert "calm" not in keys


def test_a_key_does_not_change_while_the_batches_ahead_of_it_stay() -> None:
    """A changed key makes the gate queue the flow again: keys move only when a batch ahead of it leaves."""
    loads = [load("a", 1, 60), load("b", 2, 60)]
    before = _urgent_keys(loads, {"a": 60, "b": 60})
    after = _urgent_keys([*loads, load("c", 3, 60)], {"a": 60, "b": 60, "c": 60})
    assert after["a"] == before["a"] and after["b"] == before["b"]
    assert _urgent_keys([loads[1]], {"b": 60}) == {"b": 60.0}
