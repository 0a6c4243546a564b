"""API latency under load: while a 50,000-request batch runs (bench/simulator.py upstream with a small service
time), 50 concurrent clients poll batches.retrieve, list batches, list files and download a small file.

Each client loops: pick one of the four calls, send it on its own keep-alive connection, wait --think seconds.
Latencies are recorded from the start of the batch until it completes (or --seconds pass), and reported as
p50/p95/p99/max per call and overall.

Run: .venv/bin/python bench/load.py [--requests 50000] [--clients 50] [--think 0.1]
Prints one JSON object; exits 1 if the overall p99 passes --p99-ms (default 100)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import batchgate, chat_lines, simulator, split_batchgate  # noqa: E402

HEADERS = {"Authorization": "Bearer bench"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": pct(values, 0.50), "p95_ms": pct(values, 0.95), "p99_ms": pct(values, 0.99),
            "max_ms": round(max(values, default=0.0) * 1000, 1)}


async def setup(session: aiohttp.ClientSession, base: str, n: int) -> tuple[str, str]:
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in chat_lines(n, max_tokens=4))
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", data, filename="load.jsonl", content_type="application/octet-stream")
    async with session.post(f"{base}/files", data=form, headers=HEADERS) as r:
        assert r.status == 200, await r.text()
        big = (await r.json())["id"]
    small_form = aiohttp.FormData()
    small_form.add_field("purpose", "user_data")
    small_form.add_field("file", b"x" * 2048, filename="small.txt", content_type="text/plain")
    async with session.post(f"{base}/files", data=small_form, headers=HEADERS) as r:
        assert r.status == 200, await r.text()
        small = (await r.json())["id"]
    body = {"input_file_id": big, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    async with session.post(f"{base}/batches", json=body, headers=HEADERS) as r:
        assert r.status == 200, await r.text()
        batch = (await r.json())["id"]
    return batch, small


async def client(base: str, calls: dict[str, str], stop: asyncio.Event, think: float,
                 lat: dict[str, list[float]], timeline: list[tuple[float, float]], errors: list[str],
                 seed: int) -> None:
    rng = random.Random(seed)
    names = list(calls)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        while not stop.is_set():
            name = rng.choice(names)
            t0 = time.perf_counter()
            try:
                async with session.get(base + calls[name], headers=HEADERS) as r:
                    await r.read()
                    if r.status != 200:
                        errors.append(f"{name}: HTTP {r.status}")
            except aiohttp.ClientError as e:
                errors.append(f"{name}: {type(e).__name__}")
                continue
            lat[name].append(time.perf_counter() - t0)
            timeline.append((time.monotonic(), time.perf_counter() - t0))
            if think:
                await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))


async def run(base: str, a: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        batch_id, small = await setup(session, base, a.requests)
        calls = {"batches.retrieve": f"/batches/{batch_id}", "batches.list": "/batches?limit=20",
                 "files.list": "/files?limit=100", "files.content(small)": f"/files/{small}/content"}
        lat: dict[str, list[float]] = {k: [] for k in calls}
        errors: list[str] = []
        timeline: list[tuple[float, float]] = []
        phases: list[tuple[float, str, int]] = []
        stop = asyncio.Event()
        t0 = time.monotonic()
        tasks = [asyncio.create_task(client(base, calls, stop, a.think, lat, timeline, errors, i))
                 for i in range(a.clients)]
        status = "validating"
        counts: dict[str, int] = {}
        while time.monotonic() - t0 < a.seconds:
            await asyncio.sleep(0.5)
            async with session.get(f"{base}/batches/{batch_id}", headers=HEADERS) as r:
                b = await r.json()
            status, counts = b["status"], b["request_counts"]
            phases.append((time.monotonic() - t0, status, counts["completed"] + counts["failed"]))
            if status in ("completed", "failed", "cancelled", "expired"):
                break
        elapsed = time.monotonic() - t0
        stop.set()
        await asyncio.gather(*tasks)
    everything = [x for v in lat.values() for x in v]
    windows: dict[int, list[float]] = {}
    for t, x in timeline:
        windows.setdefault(int((t - t0) // a.window) * a.window, []).append(x)
    by_window = {f"{k}s": {"p99_ms": pct(v, 0.99), "status": next((s for ts, s, _ in phases if ts >= k), status)}
                 for k, v in sorted(windows.items())}
    return {"requests": a.requests, "split": a.split, "clients": a.clients, "think_s": a.think, "batch_status": status,
            "request_counts": counts, "seconds": round(elapsed, 1),
            "api_calls_per_s": round(len(everything) / elapsed, 1), "overall": summary(everything),
            "per_call": {k: summary(v) for k, v in lat.items()}, "errors": errors[:10], "error_count": len(errors),
            "p99_by_window": by_window}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=50_000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--think", type=float, default=0.1, help="seconds each client waits between calls (jittered)")
    p.add_argument("--seconds", type=float, default=600, help="stop measuring after this long")
    p.add_argument("--sim-base", type=float, default=0.05, help="simulator seconds per request")
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument("--window", type=int, default=5, help="seconds per window of the p99 timeline")
    p.add_argument("--split", action="store_true", help="API and worker in two processes (serve --no-worker)")
    a = p.parse_args()
    with simulator("--slots", "1024", "--base", str(a.sim_base)) as sim, \
            (split_batchgate(sim) if a.split else batchgate(sim)) as base:
        result = asyncio.run(run(base, a))
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["overall"]["p99_ms"] <= a.p99_ms and not result["error_count"] else 1)


if __name__ == "__main__":
    main()
