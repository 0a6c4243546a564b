"""worker/at_risk.py on plans made by hand: which marks the planner writes (each change once; every few seconds all
of them again, and a mark taken off once more), and the one log line per change."""

from __future__ import annotations

import logging

import pytest

from batchgate.domain.load import BatchLoad
from batchgate.domain.schedule import Plan
from batchgate.worker.at_risk import AtRisk

A = BatchLoad("batch_a", "alpha", "m", 1, 0, 3600, 100, 10, 1, 5, 1.0)
B = BatchLoad("batch_b", "beta", "m", 2, 0, 7200, 100, 10, 1, 5, 1.0)
LOADS = {"batch_a": A, "batch_b": B}
ROUTES = {"batch_a": "r", "batch_b": "r"}


def at_risk(*batches: BatchLoad, finish: dict[str, float] | None = None) -> Plan:
    return Plan(finish or {}, {b.batch_id: b.expires_at for b in batches}, ROUTES)


def never(route: str) -> bool:
    return False


def test_each_change_is_written_once_and_everything_again_on_a_rewrite() -> None:
    risk = AtRisk()
    assert risk.marks(everything=True) == []
    risk.update(100.7, at_risk(A), LOADS, never)
    assert risk.marks(everything=False) == [("batch_a", 100)]
    assert risk.marks(everything=False) == []
    risk.update(101.5, at_risk(A, B), LOADS, never)
    assert risk.since() == {"batch_a": 100, "batch_b": 101}
    assert risk.marks(everything=False) == [("batch_b", 101)]
    assert risk.marks(everything=True) == [("batch_a", 100), ("batch_b", 101)]  # a write PostgreSQL skipped
    risk.update(103.0, at_risk(B), LOADS, never)
    assert risk.marks(everything=False) == [("batch_a", None)]
    assert risk.marks(everything=False) == []
    # the next rewrite takes it off once more, and the one after leaves it alone
    assert risk.marks(everything=True) == [("batch_a", None), ("batch_b", 101)]
    assert risk.marks(everything=True) == [("batch_b", 101)]
    risk.update(104.0, at_risk(B), LOADS, never)
    risk.update(105.0, at_risk(A, B), LOADS, never)  # taken off, then at risk again before the next rewrite
    assert risk.marks(everything=True) == [("batch_a", 105), ("batch_b", 101)]
    assert risk.marks(everything=True) == [("batch_a", 105), ("batch_b", 101)]
    risk.update(106.0, at_risk(B), LOADS, never)
    assert risk.marks(everything=False) == [("batch_a", None)]
    risk.update(107.0, at_risk(A, B), LOADS, never)
    assert risk.marks(everything=True) == [("batch_a", 107), ("batch_b", 101)]
    risk.update(108.0, at_risk(B), LOADS, never)
    assert risk.marks(everything=True) == [("batch_a", None), ("batch_b", 101)]
    risk.update(110.0, at_risk(), {"batch_a": A}, never)
    assert risk.marks(everything=True) == [("batch_a", None), ("batch_b", None)]
    assert risk.marks(everything=True) == [("batch_b", None)]
    assert risk.marks(everything=True) == []


def test_one_line_when_a_batch_enters_and_one_when_it_leaves(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="batchgate.worker")
    risk = AtRisk()
    for now in (100.0, 101.0, 102.0):
        risk.update(now, at_risk(A), LOADS, lambda route: route == "r")
    # the route's throughput is no longer measured (nothing done for a while): no risk known, it shares again
    risk.update(103.0, at_risk(), LOADS, never)
    risk.update(104.0, at_risk(), LOADS, never)
    assert [(r.levelno, r.getMessage(), getattr(r, "batch_id", None)) for r in caplog.records] == [
        (logging.WARNING, "batch batch_a (project alpha) is at risk of missing its window (expires at 1970-01-01 "
         "01:00:00 UTC): it goes first on upstream r and takes capacity the engine's other traffic would have had",
         "batch_a"),
        (logging.INFO, "batch batch_a (project alpha) is no longer at risk of missing its window: it takes its fair "
         "share on upstream r again", "batch_a"),
    ]
