"""Placement between a route's replicas, on the real gate and limiters (replicas without an executor: placement and
health need none): prefix affinity, holding for a busy replica, spilling from a saturated one, a replica taken out
handing its held requests back, and a route with every replica out admitting nothing until one is back."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from batchgate.upstream.gate import Gate, Permit
from batchgate.upstream.limiter import AdaptiveLimiter
from batchgate.upstream.pool import DOWN_AFTER, Pool, Replica


def sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())  # type: ignore[arg-type]

    return run


def pool_gate(n: int, slots: int) -> tuple[Gate, list[Replica]]:
    replicas = [Replica(f"r{i}", None, AdaptiveLimiter(max_limit=slots, initial=slots)) for i in range(n)]
    return Gate(Pool("route", replicas, probe_first=0.0, probe_max=0.0)), replicas


async def hold(gate: Gate, key: bytes, flow: str = "b") -> tuple[asyncio.Task[Permit], asyncio.Event]:
    """Admit one request and keep its slot until the returned event is set; the task gives its permit."""
    release = asyncio.Event()
    got: asyncio.Future[Permit] = asyncio.get_running_loop().create_future()

    async def one() -> Permit:
        async with gate.admit(key, flow) as permit:
            got.set_result(permit)
            await release.wait()
        return permit

    task = asyncio.create_task(one())
    await asyncio.sleep(0)
    return task, release


@sync
async def test_a_prefix_goes_back_to_its_replica_and_waits_for_it_while_it_is_busy() -> None:
    gate, (a, b) = pool_gate(2, 1)
    first, release_first = await hold(gate, b"k")
    assert a.limiter.inflight + b.limiter.inflight == 1
    home = a if a.limiter.inflight else b
    other = b if home is a else a
    second, release_second = await hold(gate, b"k")  # its home is full, the other replica free: it waits for home
    assert len(home.held) == 1 and other.limiter.inflight == 0 and not second.done()
    release_first.set()
    assert (await first).replica is home
    await asyncio.sleep(0)
    release_second.set()
    assert (await second).replica is home
    assert gate.pool.affine == 1 and gate.pool.spilled == 0  # the second went back to the first one's replica


@sync
async def test_a_saturated_replica_spills_to_the_one_with_room() -> None:
    gate, (a, b) = pool_gate(2, 2)
    held = [await hold(gate, b"k") for _ in range(2)]
    home = a if a.limiter.inflight else b
    other = b if home is a else a
    waiting = [await hold(gate, b"k") for _ in range(2)]  # a window's worth waits for home
    assert len(home.held) == 2
    spilled, release = await hold(gate, b"k")
    assert other.limiter.inflight == 1 and gate.pool.spilled == 1
    for _, ev in [*held, *waiting, (spilled, release)]:
        ev.set()
    for t, _ in [*held, *waiting, (spilled, release)]:
        await t
    assert gate.waiting == 0 and gate.pool.inflight == 0


@sync
async def test_new_prefixes_and_unkeyed_requests_go_to_the_replica_with_most_room() -> None:
    gate, (a, b) = pool_gate(2, 4)
    held = [await hold(gate, bytes([i])) for i in range(4)]
    assert (a.limiter.inflight, b.limiter.inflight) == (2, 2)
    for _, ev in held:
        ev.set()
    for t, _ in held:
        await t


@sync
async def test_a_replica_taken_out_hands_back_what_waited_for_it() -> None:
    gate, (a, b) = pool_gate(2, 1)
    first, release_first = await hold(gate, b"k")
    home = a if a.limiter.inflight else b
    other = b if home is a else a
    second, release_second = await hold(gate, b"k")
    assert len(home.held) == 1
    for i in range(DOWN_AFTER):
        gate.pool.failed(home, "reset", who=i)
    assert not home.up
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert other.limiter.inflight == 1  # re-admitted through the gate, onto the live replica
    release_second.set()
    assert (await second).replica is other
    release_first.set()
    await first
    await gate.pool.close()


@sync
async def test_one_request_failing_again_does_not_take_a_replica_out() -> None:
    gate, (a, _) = pool_gate(2, 1)
    for _ in range(DOWN_AFTER * 2):
        assert not gate.pool.failed(a, "HTTP 502", who="the same request")
    assert a.up
    for _ in range(DOWN_AFTER):
        gate.pool.failed(a, "refused", who="the same request", refused=True)  # a refusal always counts
    assert not a.up
    await gate.pool.close()


@sync
async def test_with_every_replica_out_nothing_is_admitted_until_one_is_back() -> None:
    gate, [a] = pool_gate(1, 2)
    gate.pool.probe_first = 3600.0  # no probe verdict during the test: it is given below
    for i in range(DOWN_AFTER):
        gate.pool.failed(a, "refused", who=i, refused=True)
    assert gate.pool.is_down and not gate.pool.has_room()
    waiter, release = await hold(gate, b"")
    assert gate.waiting == 1 and not waiter.done()
    await gate.pool.close()  # the probe task, replaced by its verdict:
    gate.pool._put_back(a)
    await asyncio.sleep(0)
    assert gate.waiting == 0 and a.limiter.inflight == 1
    release.set()
    await waiter
