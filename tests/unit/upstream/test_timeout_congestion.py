"""A timeout counts as congestion: the executor marks the permit timed out, and the window shrinks. Against
the fake upstream (its own process, on a real socket); nothing here is timed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from harness import FakeUpstream

from batchgate.domain.retry import RetryPolicy
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.router import Route
from batchgate.worker.execute import RequestExecutor


async def run(base_url: str) -> None:
    http = HttpUpstream("u", base_url, None, 64, 5.0)
    route = Route("u", ("*",), http, 64)
    await http.start()
    try:
        lim = route.pool.replicas[0].limiter  # the one replica's window
        executor = RequestExecutor(RetryPolicy(2, 0.01, 0.02), timeout=0.2)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "x_fake": {"hang": True}}
        before = lim.window
        result = await asyncio.wait_for(executor.run(route, "/v1/chat/completions", 1, "c1", body), 30)
        assert not result.ok and b"upstream_timeout" in result.data
        assert lim.timeouts == 2 and lim.window < before and not lim.slow_start  # both attempts timed out
        assert lim.inflight == 0
        ok = await executor.run(route, "/v1/chat/completions", 2, "c2", {"model": "m", "messages": []})
        assert ok.ok and lim.timeouts == 2 and lim.inflight == 0  # an answer is not a timeout
    finally:
        await http.close()


def test_a_timeout_shrinks_the_window(fake_upstream_factory: Callable[[], FakeUpstream]) -> None:
    fake = fake_upstream_factory()
    asyncio.run(run(fake.base_url))
