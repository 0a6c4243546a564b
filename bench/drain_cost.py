"""What pausability costs a request: the worker's request executor over one route, with and without the chunk's
pause guard (worker/drain.py: a task registered with the drain, the admissions at the route's gate guarded),
against an executor that answers at once, so that nothing but the worker's own CPU is measured. Alternating rounds,
side by side in one run; the ratio is guarded / bare requests per second.

Run: .venv/bin/python bench/drain_cost.py [--requests 50000] [--rounds 3] [--window 256]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from batchgate.domain.retry import RetryPolicy
from batchgate.upstream.executor import UpstreamResponse
from batchgate.upstream.router import Route
from batchgate.worker.drain import Drain
from batchgate.worker.execute import RequestExecutor

ANSWER = UpstreamResponse(200, b'{"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,'
                               b'"completion_tokens":1,"total_tokens":2}}', "req_1")


class Instant:
    """An executor that answers every request at once (after one pass of the loop, like a socket read)."""

    name = "instant"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float, sending: Any = None) -> UpstreamResponse:
        await asyncio.sleep(0)
        return ANSWER

    def check_model(self, model: str) -> None:
        return None

    def list_models(self) -> list[str]:
        return []

    def endpoints(self, model: str) -> tuple[str, ...]:
        return ("/v1/chat/completions",)


async def one_round(n: int, window: int, guarded: bool) -> float:
    route = Route("bench", ("*",), Instant(), window)
    executor = RequestExecutor(RetryPolicy(3, 0.1, 1.0), 60.0)
    drain = Drain()
    used = drain.route(route) if guarded else route
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            t = tg.create_task(executor.run(used, "/v1/chat/completions", i, f"r{i}", body, b"", None, "batch_x"))
            if guarded:
                drain.add(t)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=int, default=256)
    a = ap.parse_args()
    bare: list[float] = []
    guarded: list[float] = []
    for _ in range(a.rounds):
        bare.append(asyncio.run(one_round(a.requests, a.window, False)))
        guarded.append(asyncio.run(one_round(a.requests, a.window, True)))
    b, g = max(bare), max(guarded)
    print(f"bare    {b:10.0f} requests/s  (rounds: {', '.join(f'{x:.0f}' for x in bare)})")
    print(f"guarded {g:10.0f} requests/s  (rounds: {', '.join(f'{x:.0f}' for x in guarded)})")
    print(f"ratio guarded/bare {g / b:.3f}; cost {(1 / g - 1 / b) * 1e6:.2f} us per request")


if __name__ == "__main__":
    main()
