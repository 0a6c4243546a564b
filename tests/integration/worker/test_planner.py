"""The planner over a real store (SQLite and PostgreSQL): estimates appear once a rate is measured, the gates
learn each batch's project, weight and deadline, and the claim order follows the policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch, Usage
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkClaim, ChunkSpec, RequestResult
from batchgate.engine.local import LocalEngine
from batchgate.store.base import Store
from batchgate.upstream.gate import FlowSpec
from batchgate.upstream.router import Route, Router
from batchgate.worker.planner import Planner

LEASE = 300.0


async def running(s: Store, batch_id: str, project: str, chunks: int, expires_at: int = 100_000) -> None:
    """A batch of model "m" in_progress with `chunks` chunks of 2 requests each."""
    await s.insert_batch(Batch(batch_id, project, "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                               created_at=1, expires_at=expires_at))
    task = await s.claim_batch_task("v", now=1.0, lease=10)
    assert task is not None and task.batch.id == batch_id
    specs = [ChunkSpec(i, 2 * i + 1, 2 * i + 2, 20 * i, 20 * i + 20, 2) for i in range(chunks)]
    assert await s.start_batch(batch_id, task.generation, specs, "m", now=2)


async def finish(s: Store, claim: ChunkClaim) -> None:
    lines = (claim.spec.first_line, claim.spec.last_line)
    assert await s.record_results(claim.batch_id, claim.spec.index, claim.generation,
                                  [RequestResult(n, True, b"{}", Usage()) for n in lines])
    assert await s.complete_chunk(claim.batch_id, claim.spec.index, claim.generation, now=3)


class Clock:
    """The planner's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def router() -> tuple[Router, Route]:
    route = Route("r", ("m",), LocalEngine(), max_concurrency=4)
    return Router([route]), route


async def progress(s: Store, planner: Planner, wants: list[tuple[str, int]]) -> None:
    """Claim these chunks and run them to the end."""
    claims = await s.claim_chunks_of("w", 10.0, LEASE, wants)
    assert len(claims) == sum(n for _, n in wants)
    planner.claimed(claims)
    for c in claims:
        await finish(s, c)
        planner.released(c.batch_id)


def test_estimates_wait_for_a_measured_rate_then_follow_the_fair_share(
    run_with_store: Callable[[Body], None],
) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", "alpha", 10)
        await running(s, "batch_b", "beta", 10)
        r, route = router()
        planner = Planner(s, r, chunk_size=2, monotonic=Clock())
        assert await planner.refresh(now=10.0)
        assert not await planner.refresh(now=10.5)  # at most once a second unless poked
        assert route.gate.flow("batch_a") == FlowSpec("alpha", 1.0, None)
        # the gate is empty: 4 + 4 requests short, 4 chunks of 2, two per project
        wants = planner.wants(10)
        assert sorted(wants) == [("batch_a", 2), ("batch_b", 2)]
        await progress(s, planner, wants)
        # the first progress only starts the measurement (before it: the start-up, not the rate)
        assert await planner.refresh(now=12.0)
        a = await s.get_batch("batch_a")
        assert a is not None and a.estimated_completion_at is None
        assert planner.estimates() == {}
        await progress(s, planner, [("batch_a", 2), ("batch_b", 2)])
        # 8 requests in 2 s: 4/s shared 2/s each; 12 left each: both done 6 s from now
        assert await planner.refresh(now=14.0)
        assert planner.estimates() == {"batch_a": 20, "batch_b": 20}
        for batch_id in ("batch_a", "batch_b"):
            got = await s.get_batch(batch_id)
            assert got is not None and got.estimated_completion_at == 20
        # nothing done for over 30 s (the upstream is down, say): no rate, so no estimate either
        assert await planner.refresh(now=50.0)
        assert planner.estimates() == {}
        got = await s.get_batch("batch_a")
        assert got is not None and got.estimated_completion_at is None

    run_with_store(body)


def test_a_batch_at_risk_is_urgent_at_the_gate_and_claimed_first(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", "alpha", 50)
        await running(s, "batch_b", "beta", 50)
        await running(s, "batch_c", "gamma", 50, expires_at=60)
        r, route = router()
        planner = Planner(s, r, chunk_size=2, monotonic=Clock())
        await planner.refresh(now=10.0)
        one_each = [("batch_a", 1), ("batch_b", 1), ("batch_c", 1)]
        assert sorted(planner.wants(3)) == one_each
        await progress(s, planner, one_each)
        await planner.refresh(now=11.0)
        assert route.gate.flow("batch_c").urgent is None  # not measured yet: no risk known
        await progress(s, planner, one_each)
        # 6 requests in 1 s: at a third of 6/s, c's 96 left would take 48 s, too close to its deadline at 60;
        # at the head of the line 16 s
        assert await planner.refresh(now=12.0)
        assert route.gate.flow("batch_c") == FlowSpec("gamma", 1.0, 60.0)
        assert route.gate.flow("batch_a").urgent is None
        assert planner.wants(4)[0] == ("batch_c", 4)
        assert planner.estimates()["batch_c"] == 12 + 16

    run_with_store(body)


def test_a_batch_with_nothing_at_its_gate_gets_a_chunk_even_when_the_gate_is_full(
    run_with_store: Callable[[Body], None],
) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", "alpha", 10)
        await running(s, "batch_b", "beta", 10)
        r, route = router()
        clock = Clock()
        planner = Planner(s, r, chunk_size=2, monotonic=clock)
        await planner.refresh(now=10.0)
        # the window (4) is full and 8 requests of batch_a wait: the gate is short of nothing
        holders = [route.gate.admit() for _ in range(4)]
        for h in holders:
            await h.__aenter__()

        async def request() -> None:
            async with route.gate.admit(b"", "batch_a"):
                pass

        waiting = [asyncio.create_task(request()) for _ in range(8)]
        await asyncio.sleep(0)
        assert route.shortfall() <= 0
        # batch_b has nothing there: without a chunk of it the gate could not give beta its share
        assert planner.wants(10) == [("batch_b", 1)]
        planner.claimed(await s.claim_chunks_of("w", 10.0, LEASE, [("batch_b", 1)]))
        assert planner.wants(10) == []  # its chunk is on its way
        clock.t = 1.0
        assert planner.wants(10) == [("batch_b", 1)]  # a second later still nothing of it waits: another
        for h in holders:
            await h.__aexit__(None, None, None)
        await asyncio.gather(*waiting)

    run_with_store(body)
