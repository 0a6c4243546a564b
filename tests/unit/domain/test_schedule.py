"""The scheduling policy's fluid model: shares, estimates with redistribution, deadlines, claim order."""

from __future__ import annotations

import itertools

import pytest

from batchgate.domain.load import BatchLoad
from batchgate.domain.schedule import margin, plan, simulate, wants

_seq = itertools.count(1)


def load(batch_id: str, project: str, total: int, *, done: int = 0, weight: float = 1.0, expires_at: int = 10**9,
         leased: int = 0, open_: int = 0, model: str | None = "m") -> BatchLoad:
    return BatchLoad(batch_id, project, model, next(_seq), 0, expires_at, total, done, leased, open_, weight)


def one_route(model: str | None) -> str | None:
    return "r" if model is not None else None


def summed(got: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for batch_id, n in got:
        out[batch_id] = out.get(batch_id, 0) + n
    return out


def test_equal_weights_share_equally_and_the_freed_share_is_redistributed() -> None:
    loads = [load("a", "p", 1000), load("b", "q", 3000)]
    fin = simulate(loads, 100.0, 0.0, ())
    # 50/s each until a is done at 20 s (b has 1000 done); then b alone at 100/s for its last 2000
    assert fin["a"] == pytest.approx(20.0)
    assert fin["b"] == pytest.approx(40.0)


def test_weights_three_to_one() -> None:
    loads = [load("a", "p", 1500, weight=3), load("b", "q", 1500, weight=1)]
    fin = simulate(loads, 100.0, 0.0, ())
    assert fin["a"] == pytest.approx(20.0)  # 75/s
    assert fin["b"] == pytest.approx(20.0 + (1500 - 25 * 20) / 100)  # 25/s, then alone


def test_a_project_share_is_split_equally_between_its_batches() -> None:
    # p has a big and a small batch, q one big: p's half is split in two, the small one gets a quarter
    loads = [load("big", "p", 10_000), load("small", "p", 100), load("other", "q", 10_000)]
    fin = simulate(loads, 100.0, 0.0, ())
    assert fin["small"] == pytest.approx(4.0)
    # then p's big batch has p's whole half: other ends at 4 + 9 800 / 50, big 100 requests later alone
    assert fin["other"] == pytest.approx(200.0)
    assert fin["big"] == pytest.approx(201.0)


def test_a_small_batch_behind_three_big_ones_finishes_at_its_own_share() -> None:
    loads = [load(f"big{i}", f"p{i}", 20_000, done=5_000) for i in range(3)] + [load("small", "new", 10)]
    p = plan(loads, {"r": 64.0 / 0.1}, one_route, 1000.0)
    assert p.finish["small"] - 1000.0 == pytest.approx(10 / (640 / 4))
    assert all(p.finish[f"big{i}"] > p.finish["small"] + 60 for i in range(3))
    assert not p.at_risk


def test_no_estimate_without_a_measured_throughput_or_a_route() -> None:
    loads = [load("a", "p", 100), load("b", "p", 100, model=None)]
    assert plan(loads, {}, one_route, 0.0).finish == {}
    p = plan(loads, {"r": 10.0}, one_route, 0.0)
    assert set(p.finish) == {"a"} and p.route == {"a": "r"}


def test_a_batch_that_would_miss_at_its_fair_share_goes_first() -> None:
    # two 24h batches fill the route for 50 minutes; a 1h batch at a third of 10/s would need 90 min
    now = 0.0
    loads = [load("day1", "p", 15_000, expires_at=86_400), load("day2", "q", 15_000, expires_at=86_400),
             load("hour", "r", 18_000, expires_at=3_600)]
    fair = simulate(loads, 10.0, now, ())
    assert fair["hour"] > 3_600
    p = plan(loads, {"r": 10.0}, one_route, now)
    assert p.at_risk == {"hour": 3_600}
    assert p.finish["hour"] == pytest.approx(1_800.0)  # alone at the head of the line
    assert all(p.finish[b] <= loads[i].expires_at for i, b in enumerate(["day1", "day2", "hour"]))


def test_earliest_deadline_first_meets_every_deadline_that_can_be_met() -> None:
    # ten batches in creation order: eight long ones, then two short-deadline ones; fair share misses some
    loads = [load(f"long{i}", f"p{i % 3}", 3_000, expires_at=86_400) for i in range(8)]
    loads += [load("soon", "x", 6_000, expires_at=1_200), load("sooner", "y", 3_000, expires_at=600)]
    fair = simulate(loads, 20.0, 0.0, ())
    assert fair["sooner"] > 600
    p = plan(loads, {"r": 20.0}, one_route, 0.0)
    assert p.urgent_order() == ["sooner", "soon"]
    assert p.finish["sooner"] == pytest.approx(150.0)
    assert p.finish["soon"] == pytest.approx(450.0)
    assert all(p.finish[b.batch_id] <= b.expires_at for b in loads)


def test_a_hopeless_batch_does_not_make_others_late() -> None:
    # "lost" cannot make it even alone at the head; "tight" can, if lost does not go first
    loads = [load("lost", "p", 10_000, expires_at=100), load("tight", "q", 1_000, expires_at=150),
             load("bulk", "r", 5_000, expires_at=86_400)]
    p = plan(loads, {"r": 10.0}, one_route, 0.0)
    assert "lost" not in p.at_risk and "tight" in p.at_risk
    assert p.finish["tight"] <= 150


def test_an_at_risk_batch_stays_at_risk_until_it_finishes() -> None:
    # fair finish 2 000 s with a deadline past the entry margin: not at risk when fresh, kept when it was
    loads = [load("a", "p", 10_000, expires_at=86_400), load("b", "q", 10_000, expires_at=2_000)]
    fair = simulate(loads, 10.0, 0.0, ())["b"]
    deadline = int(fair + margin(fair) * 1.5)
    loads[1] = load("b", "q", 10_000, expires_at=deadline)
    assert plan(loads, {"r": 10.0}, one_route, 0.0).at_risk == {}
    assert plan(loads, {"r": 10.0}, one_route, 0.0, was_at_risk={"b"}).at_risk == {"b": deadline}


def test_wants_follow_the_same_rule() -> None:
    loads = [
        load("p-old", "p", 10_000, leased=3, open_=50),
        load("p-new", "p", 100, leased=0, open_=1),
        load("q-one", "q", 10_000, leased=1, open_=50, weight=1),
        load("urgent", "u", 1_000, leased=0, open_=2, expires_at=500),
        load("closed", "z", 1_000, leased=0, open_=0),  # nothing to claim: never wanted
    ]
    got = wants(loads, {"urgent": 500}, 6)
    assert got[0] == ("urgent", 2)
    # then q (1 leased) until it has p's 3, the tie to p (whose next batch is older), the last to q
    assert got == [("urgent", 2), ("q-one", 2), ("p-new", 1), ("q-one", 1)]


def test_wants_weigh_projects_and_spread_over_a_projects_batches() -> None:
    loads = [load("a1", "a", 1_000, open_=10, weight=3), load("a2", "a", 1_000, open_=10, weight=3),
             load("b1", "b", 1_000, open_=10, weight=1)]
    got = summed(wants(loads, {}, 8))
    assert got["a1"] + got["a2"] == 6 and got["b1"] == 2
    assert got["a1"] == got["a2"] == 3
    assert wants(loads, {}, 0) == []


def test_wants_stop_at_what_is_open() -> None:
    loads = [load("a", "a", 1_000, open_=1), load("b", "b", 1_000, open_=2)]
    assert summed(wants(loads, {}, 10)) == {"a": 1, "b": 2}


def test_ties_go_to_whoever_had_a_turn_longest_ago() -> None:
    # Nothing leased anywhere (a worker holds few chunks): creation order would pick p's batch every time.
    loads = [load("p1", "p", 10_000, open_=40), load("p2", "p", 10_000, open_=40),
             load("q1", "q", 10_000, open_=40), load("r1", "r", 10_000, open_=40)]
    assert wants(loads, {}, 1) == [("p1", 1)]
    turns: dict[str, float] = {}
    order: list[str] = []
    for i in range(8):  # one chunk per claim, each finished before the next: leased stays 0
        (batch_id, _), = wants(loads, {}, 1, turns)
        order.append(batch_id)
        project = next(b.project for b in loads if b.batch_id == batch_id)
        turns[batch_id] = turns[project] = float(i + 1)
    # projects take turns, and p's turns alternate between its batches
    assert order == ["p1", "q1", "r1", "p2", "q1", "r1", "p1", "q1"]
