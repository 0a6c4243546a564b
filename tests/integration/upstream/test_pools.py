"""Route pools against real fake upstreams in this process (real HTTP over loopback, stopped and started by the
tests): replica choice, health (taken out, probed, put back), re-queue without spending attempts, a whole route
down waited out with two log lines, a 4xx still final, and prefix affinity. Nothing here is timed: the tests wait
for states, never for durations."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from fake_upstream import FakeState, create_app

from batchgate.domain.prefix import prefix_key
from batchgate.domain.retry import RetryPolicy
from batchgate.domain.work import RequestResult
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.router import Route
from batchgate.worker.execute import RequestExecutor

CHAT = "/v1/chat/completions"


class Fake:
    """A fake upstream on a port of its own that a test can stop (connections refused) and start again."""

    def __init__(self) -> None:
        self.state = FakeState()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.state), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return run


@asynccontextmanager
async def fakes(n: int) -> AsyncIterator[list[Fake]]:
    made = [Fake() for _ in range(n)]
    try:
        for f in made:
            await f.start()
        yield made
    finally:
        for f in made:
            await f.stop()


async def pool_route(fakes: list[Fake], window: int = 4) -> Route:
    executors = tuple(HttpUpstream("pool", f.url, None, window, 2.0) for f in fakes)
    route = Route("pool", ("*",), executors[0], window, None, executors)
    route.pool.probe_first = 0.05  # probe at once: the tests wait for states, not durations
    route.pool.probe_max = 0.2
    for e in executors:
        await e.start()
    return route


async def close(route: Route) -> None:
    await route.pool.close()
    for r in route.pool.replicas:
        assert r.executor is not None
        await r.executor.close()


def chat(i: int, system: str = "be brief", **fake: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "system", "content": system},
                                                       {"role": "user", "content": f"q{i}"}]}
    if fake:
        body["x_fake"] = fake
    return body


async def run_all(ex: RequestExecutor, route: Route, bodies: list[dict[str, Any]]) -> list[RequestResult]:
    return list(await asyncio.gather(*(
        ex.run(route, CHAT, i + 1, f"r{i}", b, prefix_key(CHAT, b)) for i, b in enumerate(bodies))))


async def until(check: Callable[[], bool]) -> None:
    """Poll a state that no event announces (a probe's verdict), a step at a time: untimed."""
    for _ in range(100_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the state never came")


@sync
async def test_requests_spread_over_replicas_within_each_window() -> None:
    async with fakes(2) as made:
        a, b = made
        for f in (a, b):
            f.state.set_knobs({"latency": 0.05})
        route = await pool_route([a, b], window=3)
        ex = RequestExecutor(RetryPolicy(max_attempts=1), timeout=10)
        results = await run_all(ex, route, [chat(i, system=f"s{i}") for i in range(24)])
        await close(route)
        assert all(r.ok for r in results)
        assert a.state.total > 0 and b.state.total > 0 and a.state.total + b.state.total == 24
        assert a.state.max_in_flight <= 3 and b.state.max_in_flight <= 3  # each replica's own window


@sync
async def test_a_replica_that_refuses_is_taken_out_and_its_requests_spend_no_attempt() -> None:
    async with fakes(2) as made:
        a, b = made
        await b.stop()  # refuses connections from the start
        route = await pool_route([a, b], window=4)
        ex = RequestExecutor(RetryPolicy(max_attempts=1), timeout=10)  # one spent attempt would fail a line
        results = await run_all(ex, route, [chat(i, system=f"s{i}") for i in range(40)])
        assert all(r.ok for r in results), [r.data for r in results if not r.ok][:2]
        assert a.state.total == 40  # nothing ran twice: b never answered
        down = route.pool.replicas[1]
        assert not down.up and "onnect" in down.last_error
        assert route.state(0).replicas[1].up is False
        await b.start()
        await until(lambda: down.up)  # the probe put it back
        results = await run_all(ex, route, [chat(i, system=f"t{i}") for i in range(40)])
        await close(route)
        assert all(r.ok for r in results) and b.state.total > 0


@sync
async def test_a_replica_answering_502_is_taken_out_and_probed_back() -> None:
    async with fakes(2) as made:
        a, b = made
        b.state.set_knobs({"down_status": 502})
        route = await pool_route([a, b])
        # Before it is out (3 in a row) a 502 spends an attempt (one request can cause it); after, none.
        ex = RequestExecutor(RetryPolicy(max_attempts=2, base_seconds=0.01), timeout=10)
        results = await run_all(ex, route, [chat(i, system=f"s{i}") for i in range(30)])
        assert all(r.ok for r in results)
        assert b.state.statuses.get("502", 0) <= 3 + 4  # taken out after 3 in a row (and what was in flight)
        replica = route.pool.replicas[1]
        assert not replica.up and replica.last_error == "HTTP 502"
        b.state.set_knobs({"down_status": None})
        await until(lambda: replica.up)
        await close(route)


@sync
async def test_an_outage_of_every_replica_is_waited_out_with_two_warnings(caplog: pytest.LogCaptureFixture) -> None:
    async with fakes(1) as made:
        [a] = made
        route = await pool_route([a], window=4)
        ex = RequestExecutor(RetryPolicy(max_attempts=2, base_seconds=0.01), timeout=10)
        await a.stop()
        caplog.set_level(logging.WARNING, "batchgate.upstream")
        task = asyncio.ensure_future(run_all(ex, route, [chat(i) for i in range(50)]))
        await until(lambda: route.pool.is_down)
        assert route.state(0).down and route.gate.waiting > 0
        before = a.state.total
        await asyncio.sleep(0.3)  # several probes fail meanwhile; nothing is sent and nothing fails
        assert not task.done() and a.state.total == before == 0
        await a.start()
        results = await task
        await close(route)
        assert all(r.ok for r in results)
        assert a.state.total == 50  # each line once: the refused ones never reached it
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, warnings
        assert "every replica is down" in warnings[0] and "dispatch resumed" in warnings[1]


@sync
async def test_a_4xx_from_a_live_upstream_is_final_at_once() -> None:
    async with fakes(1) as made:
        [a] = made
        route = await pool_route([a])
        ex = RequestExecutor(RetryPolicy(max_attempts=5), timeout=10)
        [bad, good] = await run_all(ex, route, [chat(1, status=400), chat(2)])
        await close(route)
        assert not bad.ok and b'"status_code":400' in bad.data and bad.retries == 0
        assert good.ok and a.state.total == 2 and route.pool.replicas[0].up


@sync
async def test_requests_of_one_prefix_go_to_the_replica_that_served_it() -> None:
    async with fakes(3) as made:
        replicas = made
        for f in replicas:
            f.state.set_knobs({"latency": 0.01})
        route = await pool_route(replicas, window=8)
        ex = RequestExecutor(RetryPolicy(max_attempts=1), timeout=10)
        prompts = [f"system prompt {p}" for p in range(6)]
        bodies = [chat(i, system=prompts[i % 6], key=f"p{i % 6}-{i}") for i in range(60)]
        for body in bodies:
            body["model"] = f"m-{body['messages'][0]['content'][-1]}"  # the fake counts models: one per prefix
        results = await run_all(ex, route, bodies)
        await close(route)
        assert all(r.ok for r in results)
        where = {m: [i for i, f in enumerate(replicas) if f.state.models.get(m)] for m in {b["model"] for b in bodies}}
        spilled = route.pool.spilled
        # Without saturation every prefix has one home; each spill (a saturated home) adds at most one more.
        assert sum(len(v) for v in where.values()) <= 6 + spilled, (where, spilled)
        assert route.pool.affine >= 60 - 6 - spilled
        assert len({tuple(v) for v in where.values()}) > 1  # and the prefixes are spread over the replicas
