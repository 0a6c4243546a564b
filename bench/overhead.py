"""Overhead of the batch path: N chat requests against an instantly answering upstream, measured two ways
side by side in one run:

  raw   - a minimal asyncio client (aiohttp, one session, a fixed window) sends the same requests directly
          (and, for reference, the same client on batchgate's own HTTP/1.1 pool);
  batch - batchgate end to end: create -> completed, output file written.

ratio = batch requests/s / raw requests/s. Run: .venv/bin/python bench/overhead.py [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from typing import Any

import aiohttp
import orjson
from common import batchgate, chat_lines, run_batch, simulator

from batchgate.upstream.http11 import Pool


async def raw_client(url: str, lines: list[dict[str, Any]], window: int) -> float:
    conn = aiohttp.TCPConnector(limit=window)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for x in lines:
        queue.put_nowait(x)
    out: list[bytes] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            x = queue.get_nowait()
            async with session.post(url + "/v1/chat/completions", data=orjson.dumps(x["body"]),
                                    headers={"content-type": "application/json"}) as r:
                out.append(await r.read())

    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(worker(session) for _ in range(window)))
    assert len(out) == len(lines)
    return time.monotonic() - t0


async def raw_http11(url: str, lines: list[dict[str, Any]], window: int) -> float:
    """The same minimal client on batchgate's own HTTP/1.1 pool: what the client alone costs, without a batch."""
    pool = Pool(url + "/v1", {"content-type": "application/json"}, window, 10.0)
    pool.start()
    it = iter(lines)
    out: list[bytes] = []

    async def worker() -> None:
        for x in it:
            out.append((await pool.post("/chat/completions", orjson.dumps(x["body"]), 60.0)).body)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(window)))
    pool.close()
    assert len(out) == len(lines)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=128, help="raw client's concurrency")
    args = ap.parse_args()
    lines = chat_lines(args.requests)
    with simulator("--slots", "100000", "--base", "0") as sim:
        raw_s = asyncio.run(raw_client(sim, lines, args.window))
        lean_s = asyncio.run(raw_http11(sim, lines, args.window))
        with batchgate(sim) as api:
            batch_s, b = run_batch(api, lines)
    assert b.status == "completed" and b.request_counts.completed == args.requests, b
    raw_rps, batch_rps = args.requests / raw_s, args.requests / batch_s
    print(f"requests: {args.requests}")
    print(f"raw aiohttp client (window {args.window}): {raw_s:.2f} s, {raw_rps:,.0f} req/s")
    print(f"raw client on batchgate's HTTP/1.1 pool (window {args.window}): {lean_s:.2f} s, "
          f"{args.requests / lean_s:,.0f} req/s")
    print(f"batchgate end to end (create -> completed): {batch_s:.2f} s, {batch_rps:,.0f} req/s")
    print(f"bench process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"ratio batch/raw-same-client: {lean_s / batch_s:.2f}")
    print(f"ratio batch/raw: {batch_rps / raw_rps:.2f}")


if __name__ == "__main__":
    main()
