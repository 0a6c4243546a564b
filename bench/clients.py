"""Upstream HTTP clients side by side: requests/s and client CPU per request for aiohttp's ClientSession and
batchgate's own HTTP/1.1 pool (`batchgate.upstream.http11`), same requests, same simulator, same window.

Run: .venv/bin/python bench/clients.py [--requests 20000] [--window 128]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from common import chat_lines, simulator

from batchgate.upstream.http11 import Pool

Send = Callable[[bytes], Awaitable[tuple[int, bytes]]]


async def measure(send: Send, bodies: list[bytes], window: int) -> tuple[float, float]:
    """(requests/s, client CPU microseconds per request)"""
    it = iter(bodies)
    done = 0

    async def worker() -> None:
        nonlocal done
        for b in it:
            status, _ = await send(b)
            assert status == 200
            done += 1

    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(window)))
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    assert done == len(bodies)
    return len(bodies) / wall, cpu / len(bodies) * 1e6


async def with_aiohttp(url: str, bodies: list[bytes], window: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=window)) as s:
        async def send(b: bytes) -> tuple[int, bytes]:
            async with s.post(url + "/v1/chat/completions", data=b,
                              headers={"content-type": "application/json"}) as r:
                return r.status, await r.read()

        return await measure(send, bodies, window)


async def with_http11(url: str, bodies: list[bytes], window: int) -> tuple[float, float]:
    pool = Pool(url + "/v1", {"Content-Type": "application/json"}, window, 10.0)
    pool.start()

    async def send(b: bytes) -> tuple[int, bytes]:
        r = await pool.post("/chat/completions", b, 60.0)
        return r.status, r.body

    try:
        return await measure(send, bodies, window)
    finally:
        pool.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=128)
    args = ap.parse_args()
    bodies = [orjson.dumps(x["body"]) for x in chat_lines(args.requests)]
    results: dict[str, list[float]] = {}
    with simulator("--slots", "100000", "--base", "0") as sim:
        for name, fn in (("aiohttp", with_aiohttp), ("http11", with_http11)) * 2:
            rps, cpu = asyncio.run(fn(sim, bodies, args.window))
            print(f"{name:8s} {rps:8,.0f} req/s   client CPU {cpu:6.1f} us/request")
            results.setdefault(name, []).append(cpu)
    a, h = min(results["aiohttp"]), min(results["http11"])
    print(f"ratio client CPU per request aiohttp/http11: {a / h:.1f}")


if __name__ == "__main__":
    main()
