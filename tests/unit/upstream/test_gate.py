"""The gate's admission order: urgent flows by deadline, weighted fair queueing between projects, round robin
between a project's batches, prefix runs inside a batch; and cancellation that never leaks a slot."""

from __future__ import annotations

import asyncio
import functools
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from batchgate.upstream.gate import FlowSpec, Gate
from batchgate.upstream.limiter import AdaptiveLimiter


def sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())  # type: ignore[arg-type]

    return run


def gate(slots: int = 1) -> Gate:
    return Gate(AdaptiveLimiter(max_limit=slots, initial=slots))


async def admitted(g: Gate, waiters: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Queue `waiters` (flow, key) behind a full window, then free it: the order they got their slots in.
    (Permits are released without an answer, so the window never moves.)"""
    order: list[tuple[str, bytes]] = []
    holders = [g.admit() for _ in range(g.limiter.capacity)]
    for h in holders:
        await h.__aenter__()

    async def one(flow: str, key: bytes) -> None:
        async with g.admit(key, flow):
            order.append((flow, key))
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(one(f, k)) for f, k in waiters]
    await asyncio.sleep(0)
    assert g.waiting == len(waiters)
    for h in holders:
        await h.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert g.waiting == 0 and g.limiter.inflight == 0
    return order


@sync
async def test_projects_share_by_weight_under_contention() -> None:
    g = gate()
    g.set_flows({"a": FlowSpec("A", 3.0), "b": FlowSpec("B", 1.0)})
    order = await admitted(g, [("a", b"")] * 400 + [("b", b"")] * 400)
    first = Counter(f for f, _ in order[:200])
    assert 148 <= first["a"] <= 152 and 48 <= first["b"] <= 52
    g.set_flows({"a": FlowSpec("A", 1.0), "b": FlowSpec("B", 1.0)})
    order = await admitted(g, [("a", b"")] * 300 + [("b", b"")] * 100)
    first = Counter(f for f, _ in order[:200])
    assert 99 <= first["a"] <= 101


@sync
async def test_unknown_flows_share_one_default_project() -> None:
    g = gate()
    g.set_flows({"known": FlowSpec("P")})
    order = await admitted(g, [("x", b"")] * 50 + [("y", b"")] * 50 + [("known", b"")] * 100)
    first = Counter(f for f, _ in order[:100])
    assert 49 <= first["known"] <= 51  # project "" (x and y) and project P: half each
    assert abs(first["x"] - first["y"]) <= 1  # and x, y equal within ""


@sync
async def test_a_small_batch_is_not_stuck_behind_a_big_one_of_its_project() -> None:
    g = gate()
    g.set_flows({"big": FlowSpec("P"), "small": FlowSpec("P")})
    order = await admitted(g, [("big", b"")] * 500 + [("small", b"")] * 10)
    last_small = max(i for i, (f, _) in enumerate(order) if f == "small")
    assert last_small < 21


@sync
async def test_a_newly_active_project_gets_no_hoarded_credit() -> None:
    g = gate()
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B")})
    await admitted(g, [("a", b"")] * 300)  # A alone: its tag ran far ahead; B was idle
    order = await admitted(g, [("a", b"")] * 100 + [("b", b"")] * 100)
    # B does not get the next hundred slots to itself: the two alternate from the start
    assert Counter(f for f, _ in order[:20]) == {"a": 10, "b": 10}


@sync
async def test_urgent_flows_go_first_in_deadline_order() -> None:
    g = gate()
    g.set_flows({"late": FlowSpec("A", 1.0, urgent=2000.0), "soon": FlowSpec("B", 1.0, urgent=1000.0),
                 "plain": FlowSpec("C", 100.0)})
    order = await admitted(g, [("plain", b"")] * 20 + [("late", b"")] * 10 + [("soon", b"")] * 10)
    assert [f for f, _ in order] == ["soon"] * 10 + ["late"] * 10 + ["plain"] * 20


@sync
async def test_a_flow_made_urgent_while_waiting_goes_first() -> None:
    g = gate()
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B")})
    holder = g.admit()
    await holder.__aenter__()
    order: list[str] = []

    async def one(flow: str) -> None:
        async with g.admit(b"", flow):
            order.append(flow)

    tasks = [asyncio.create_task(one(f)) for f in ["a"] * 10 + ["b"] * 10]
    await asyncio.sleep(0)
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B", urgent=5.0)})
    await holder.__aexit__(None, None, None)
    await asyncio.gather(*tasks)
    assert order == ["b"] * 10 + ["a"] * 10
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B")})  # and back to fair share: nothing left behind
    assert (await admitted(g, [("a", b""), ("b", b"")])) and g.waiting == 0


@sync
async def test_prefix_runs_inside_a_batch() -> None:
    g = gate()
    waiters = [("f", b"k1"), ("f", b"k2"), ("f", b"k1"), ("f", b"k2"), ("f", b"k3"), ("f", b"k1")]
    order = await admitted(g, waiters)
    assert [k for _, k in order] == [b"k1", b"k1", b"k1", b"k2", b"k2", b"k3"]


@sync
async def test_prefix_runs_survive_round_robin_between_batches() -> None:
    g = gate()
    g.set_flows({"x": FlowSpec("P"), "y": FlowSpec("P")})
    order = await admitted(g, [("x", b"a"), ("x", b"b"), ("x", b"a"), ("y", b"c"), ("y", b"c")])
    assert [k for f, k in order if f == "x"] == [b"a", b"a", b"b"]
    assert [f for f, _ in order[:4]] == ["x", "y", "x", "y"]


@sync
async def test_cancelled_waiters_leave_no_leaked_slot() -> None:
    g = gate(2)
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B", urgent=1.0)})
    holders = [g.admit(), g.admit()]
    for h in holders:
        await h.__aenter__()
    got: list[str] = []

    async def one(flow: str) -> None:
        async with g.admit(b"", flow):
            got.append(flow)
            await asyncio.sleep(0)

    tasks = {f"{f}{i}": asyncio.create_task(one(f)) for f in "ab" for i in range(20)}
    await asyncio.sleep(0)
    assert g.waiting == 40
    for name in ("a0", "a1", "a5", "b0", "b19"):
        tasks[name].cancel()
    for i in range(2, 19):  # every other urgent waiter cancelled too: their flow's turn must skip them
        if i % 2:
            tasks[f"b{i}"].cancel()
    await asyncio.sleep(0)
    assert g.waiting == 40 - 5 - 8
    await holders[0].__aexit__(None, None, None)
    # a slot granted to a waiter that is cancelled before it runs goes back to the gate
    granted = next(t for n, t in tasks.items() if n.startswith("b") and not t.cancelled())
    granted.cancel()
    await holders[1].__aexit__(None, None, None)
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert g.waiting == 0 and g.limiter.inflight == 0
    assert len(got) == 40 - 5 - 8 - 1
    # the gate is as good as new: everything is admitted at once with the window free
    assert len(await admitted(g, [("a", b"")] * 3)) == 3


@sync
async def test_cancelling_every_waiter_of_a_flow_then_more_come() -> None:
    g = gate()
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B")})
    holder = g.admit()
    await holder.__aenter__()

    async def one(flow: str) -> None:
        async with g.admit(b"", flow):
            pass

    gone = [asyncio.create_task(one("a")) for _ in range(5)]
    await asyncio.sleep(0)
    for t in gone:
        t.cancel()
    await asyncio.gather(*gone, return_exceptions=True)
    assert g.waiting == 0
    await holder.__aexit__(None, None, None)
    order = await admitted(g, [("a", b""), ("b", b""), ("a", b""), ("b", b"")])
    assert [f for f, _ in order] == ["a", "b", "a", "b"]


@sync
async def test_a_waiter_cancelled_just_before_its_turn_is_skipped_and_counted_once() -> None:
    # The cancelled task has not run its handler yet when the slot frees: its future is done but still counted.
    g = gate()
    g.set_flows({"a": FlowSpec("A"), "b": FlowSpec("B")})
    holder = g.admit()
    await holder.__aenter__()
    got: list[str] = []

    async def one(flow: str) -> None:
        async with g.admit(b"", flow):
            got.append(flow)

    a, b1, b2 = (asyncio.create_task(one(f)) for f in ("a", "b", "b"))
    await asyncio.sleep(0)
    a.cancel()
    b1.cancel()
    await holder.__aexit__(None, None, None)  # before either handler ran
    await asyncio.gather(a, b1, b2, return_exceptions=True)
    assert got == ["b"] and g.waiting == 0 and g.limiter.inflight == 0
    assert [f for f, _ in await admitted(g, [("a", b""), ("b", b""), ("a", b"")])] == ["a", "b", "a"]


@sync
async def test_the_gate_wakes_the_worker_when_a_flow_falls_to_its_low_water() -> None:
    g = gate()
    g.low_water = 2
    calls: list[int] = []
    g.on_hungry = lambda: calls.append(g.waiting_for("a"))
    order = await admitted(g, [("a", b"")] * 5 + [("b", b"")] * 5)
    assert len(order) == 10
    assert 2 in calls  # a fell to two waiting: its next chunk is claimed before it runs out


@sync
async def test_thousands_of_waiters_with_cancellations_and_changing_specs_all_add_up() -> None:
    rng = random.Random(7)
    g = gate(8)
    flows = [f"batch_{i}" for i in range(300)]

    def specs() -> dict[str, FlowSpec]:
        return {f: FlowSpec(f"p{i % 17}", 1.0 + i % 3, rng.choice([None, None, None, float(i % 5)]))
                for i, f in enumerate(flows)}

    g.set_flows(specs())
    holders = [g.admit() for _ in range(8)]
    for h in holders:
        await h.__aenter__()
    admitted_flows: Counter[str] = Counter()

    async def one(flow: str, key: bytes) -> None:
        async with g.admit(key, flow):
            admitted_flows[flow] += 1
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(one(rng.choice(flows), bytes([rng.randrange(4)]))) for _ in range(5_000)]
    await asyncio.sleep(0)
    assert g.waiting == 5_000
    cancelled = set(rng.sample(range(5_000), 700))
    for i in cancelled:
        tasks[i].cancel()
    g.set_flows(specs())
    for h in holders:
        await h.__aexit__(None, None, None)
    for _ in range(20):  # specs change while requests are admitted
        await asyncio.sleep(0)
        g.set_flows(specs())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == len(cancelled)
    assert sum(admitted_flows.values()) == 5_000 - len(cancelled)
    assert g.waiting == 0 and g.limiter.inflight == 0


def test_a_batch_at_risk_stops_the_windows_yielding() -> None:
    lim = AdaptiveLimiter(neighbourly=True)
    g = Gate(lim)
    g.set_flows({"a": FlowSpec("A")})
    assert not lim.urgent
    g.set_flows({"a": FlowSpec("A"), "late": FlowSpec("B", 1.0, 1_000.0)})
    assert lim.urgent
    g.set_flows({"a": FlowSpec("A")})
    assert not lim.urgent


@sync
async def test_a_permit_that_waited_in_the_executor_counts_at_the_engine_only_once_sent() -> None:
    """`waiting` takes the request off what the window counts at the engine, `sent` puts it back; one released while
    it still waited (its connection failed, or it was cancelled) gives its place back too."""
    g = gate(slots=4)
    lim = g.limiter.replicas[0].limiter
    async with g.admit() as sent_later, g.admit() as never_sent:
        sent_later.waiting()
        never_sent.waiting()
        assert (lim.inflight, lim.queued, lim.at_engine) == (2, 2, 0)
        sent_later.sent()
        assert (lim.queued, lim.at_engine) == (1, 1)
        async with g.admit():
            assert lim.at_engine == 2
    assert (lim.inflight, lim.queued, lim.at_engine) == (0, 0, 0)
