"""The planner over a real store (SQLite and PostgreSQL) marks a batch at risk of missing its window: it writes
at_risk_since once when the batch starts going first and takes it off when it leaves the set, and logs each change
once: a WARNING that says when the batch takes capacity the engine's other traffic would have had, an INFO when it
stops running."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from pgtools import Body

from batchgate.engine.local import LocalEngine
from batchgate.store.base import Store
from batchgate.upstream.engine_load import EngineLoad
from batchgate.upstream.router import Route, Router
from batchgate.worker.planner import Planner

from .test_planner import Clock, progress, running

ONE_EACH = [("batch_a", 1), ("batch_b", 1), ("batch_c", 1)]
WENT_FIRST = ("batch batch_c (project gamma) is at risk of missing its window (expires at 1970-01-01 00:01:00 UTC): "
              "it goes first on upstream r")
STOPPED = ("batch batch_c (project gamma) is no longer at risk of missing its window: it stopped running (done, "
           "paused, cancelled or expiring)")
TAKES = " and takes capacity the engine's other traffic would have had"


async def at_risk_since(s: Store, batch_id: str) -> int | None:
    b = await s.get_batch(batch_id)
    assert b is not None
    return b.at_risk_since


async def three_batches(s: Store, route: Route) -> Planner:
    """batch_c, due at 60, goes first from the plan at 12 (see test_planner's
    test_a_batch_at_risk_is_urgent_at_the_gate_and_claimed_first)."""
    await running(s, "batch_a", "alpha", 50)
    await running(s, "batch_b", "beta", 50)
    await running(s, "batch_c", "gamma", 50, expires_at=60)
    planner = Planner(s, Router([route]), chunk_size=2, monotonic=Clock())
    await planner.refresh(now=10.0)
    await progress(s, planner, ONE_EACH)
    await planner.refresh(now=11.0)
    await progress(s, planner, ONE_EACH)
    return planner


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "batchgate.worker"]


def test_a_batch_at_risk_is_marked_once_and_unmarked_when_it_stops(
    run_with_store: Callable[[Body], None], caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(s: Store) -> None:
        route = Route("r", ("m",), LocalEngine(), max_concurrency=4)
        planner = await three_batches(s, route)
        assert await at_risk_since(s, "batch_c") is None
        assert messages(caplog) == []
        assert await planner.refresh(now=12.4)
        assert route.gate.flow("batch_c").urgent == 60.0
        assert (await at_risk_since(s, "batch_c"), await at_risk_since(s, "batch_a")) == (12, None)
        assert messages(caplog) == [(logging.WARNING, WENT_FIRST)]
        for now in (13.5, 14.5, 15.5):  # still at risk: no new line, the first time stands
            await progress(s, planner, [("batch_c", 3)])
            assert await planner.refresh(now=now)
        assert await at_risk_since(s, "batch_c") == 12
        assert len(messages(caplog)) == 1
        await s.request_cancel("batch_c", now=21)
        assert await planner.refresh(now=21.0)
        assert await at_risk_since(s, "batch_c") is None
        assert messages(caplog)[1:] == [(logging.INFO, STOPPED)]
        assert await planner.refresh(now=22.0)
        assert len(messages(caplog)) == 2

    caplog.set_level(logging.INFO, logger="batchgate.worker")
    run_with_store(body)


def test_a_batch_that_would_miss_even_served_first_is_unmarked_with_a_warning(
    run_with_store: Callable[[Body], None], caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(s: Store) -> None:
        route = Route("r", ("m",), LocalEngine(), max_concurrency=4)
        planner = await three_batches(s, route)
        assert await planner.refresh(now=12.4)
        assert await at_risk_since(s, "batch_c") == 12
        # the upstream all but stops: 2 requests in the next 17.6 s. At the rate since 11 (8 in 19 s) its 92 left
        # take minutes, past 60 even at the head of the line
        await progress(s, planner, [("batch_c", 1)])
        assert await planner.refresh(now=30.0)
        assert route.gate.flow("batch_c").urgent is None
        assert await at_risk_since(s, "batch_c") is None
        (level, line), = messages(caplog)[1:]
        assert level == logging.WARNING
        assert line.startswith("batch batch_c (project gamma) would miss its window (expires at 1970-01-01 00:01:00 "
                               "UTC) even served first: it takes its fair share on upstream r again (done at about ")
        assert line.endswith("UTC), so that the batches behind it make theirs")

    caplog.set_level(logging.INFO, logger="batchgate.worker")
    run_with_store(body)


def test_the_warning_says_when_the_batch_takes_what_the_engines_other_traffic_had(
    run_with_store: Callable[[Body], None], caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(s: Store) -> None:
        route = Route("r", ("m",), LocalEngine(), max_concurrency=4, neighbourly=True)
        planner = await three_batches(s, route)
        (replica,) = route.pool.replicas
        replica.limiter.on_engine_load(EngineLoad(running=6, waiting=2, slots=None, kv_usage=None))  # users
        assert replica.limiter.yielding()
        assert await planner.refresh(now=12.4)
        assert messages(caplog) == [(logging.WARNING, WENT_FIRST + TAKES)]
        assert not replica.limiter.yielding()  # the windows stop yielding while a batch is at risk

    caplog.set_level(logging.INFO, logger="batchgate.worker")
    run_with_store(body)
