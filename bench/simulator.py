"""An OpenAI-compatible engine simulator modelling a continuous-batching server (like vLLM).

- `--slots N` requests are served at once (vLLM's max_num_seqs).
- Service time per request = base + per_token * output_tokens + prefill * (prompt tokens not in the prefix
  cache). Output tokens = the request's `max_tokens` (default `--tokens`); prompt tokens ~ characters / 4.
- The prefix cache is an LRU of `--cache` prompt prefixes (every message but the last).
- `--mode queue`: requests beyond the slots wait in a FIFO queue. `--mode reject`: they get 429 (or 503 with
  `--reject-status 503`) with `Retry-After` at once.
- `--jitter J`: each service time is scaled by a uniform factor in [1 - J, 1 + J] (requests of different
  lengths: without it, requests sent together finish together).
- An interactive neighbour (issue 16): `--interactive-rate R` (or `POST /_interactive {"rate": R}` at run time)
  makes the engine itself receive R requests a second at random (Poisson, open loop) beside whatever clients
  send, each served like a request of `--interactive-tokens` output tokens; their latencies from arrival to answer
  are reported apart, in `/_stats`' `interactive` (n, p50, p95, p99, mean, since the last reset).
- `--priority`: the queue is ordered by request priority, as vLLM's `--scheduling-policy priority` does (a
  lower `priority` value first; no field is 0, so the neighbour, which sends none, goes ahead of requests sent
  with a positive one). Without it, one FIFO.
- `GET /metrics`: vLLM's gauges (`vllm:num_requests_running`, `vllm:num_requests_waiting`,
  `vllm:kv_cache_usage_perc`) over all traffic, the neighbour's included.
- `GET /_stats` reports busy slot-seconds, so saturation = busy / (slots * wall time) can be read; and, since
  the last reset (or the first request), time-weighted figures of the slots in use and of its queue (requests
  waiting inside the engine): `utilization`, `queue_mean`, `queue_p95`, `queue_max`; and `repeated`, requests
  served whose body it had served before (a client's re-sends). `POST /_reset` clears the counters: reset at
  the start of the steady state, read at its end.

Run: python bench/simulator.py --port 9000 --slots 256 --base 0.5 --mode queue
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import time
from collections import OrderedDict, deque
from typing import Any

from aiohttp import web


class Engine:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.free = a.slots
        self.queue: deque[asyncio.Future[None]] = deque()
        self.low: deque[asyncio.Future[None]] = deque()  # with --priority: requests of a positive priority
        self.rng = random.Random(1)
        self.interactive_rate = a.interactive_rate
        self.interactive_task: asyncio.Task[None] | None = None
        self.waiting = 0  # requests in the queue (futures neither granted nor abandoned)
        self.cache: OrderedDict[bytes, None] = OrderedDict()
        self.reset()

    def reset(self) -> None:
        self.busy = 0.0
        self.first: float | None = None
        self.last = 0.0
        self.served = self.rejected = self.hits = self.misses = 0
        self.max_busy = 0
        self.timeline: list[int] = []
        now = time.monotonic()
        busy_now = self.a.slots - self.free
        # Time-weighted accounting from `since`: None until the first request when the engine is idle.
        self.since: float | None = now if (busy_now or self.waiting) else None
        self.marked = now
        self.busy_area = self.queue_area = 0.0
        self.queue_time: dict[int, float] = {}
        self.queue_max = 0
        self.seen: set[bytes] = set()
        self.repeated = 0
        self.interactive: list[float] = []
        self.batch_served = 0

    def mark(self) -> None:
        """Account the time since the last change, before the slots in use or the queue change."""
        now = time.monotonic()
        if self.since is None:
            self.since = self.marked = now
            return
        dt = now - self.marked
        if dt > 0:
            self.busy_area += (self.a.slots - self.free) * dt
            self.queue_area += self.waiting * dt
            self.queue_time[self.waiting] = self.queue_time.get(self.waiting, 0.0) + dt
        self.marked = now

    async def acquire(self, priority: float = 0) -> bool:
        if self.free > 0 and not self.queue and not self.low:
            self.mark()
            self.free -= 1
            return True
        if self.a.mode == "reject":
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.mark()
        (self.low if self.a.priority and priority > 0 else self.queue).append(fut)
        self.waiting += 1
        self.queue_max = max(self.queue_max, self.waiting)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():  # the client went away while it waited
                self.mark()
                self.waiting -= 1
            else:
                self.release()  # granted as it was cancelled: pass the slot on
            raise
        return True

    def release(self) -> None:
        self.mark()
        for queue in (self.queue, self.low):
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # the slot passes on: busy slots unchanged, one fewer waiting
                    self.waiting -= 1
                    return
        self.free += 1

    def service(self, tokens: int, prompt_uncached: float) -> float:
        t = self.a.base + self.a.per_token * tokens + self.a.prefill * prompt_uncached
        return t * self.rng.uniform(1 - self.a.jitter, 1 + self.a.jitter) if self.a.jitter else t

    async def neighbour(self) -> None:
        """Open-loop arrivals at `interactive_rate` a second, each an interactive request of its own."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        while True:
            rate = self.interactive_rate
            if rate <= 0:
                await asyncio.sleep(0.05)
                next_at = loop.time()
                continue
            next_at += self.rng.expovariate(rate)
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one_interactive(next_at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def one_interactive(self, arrived: float) -> None:
        await self.acquire()
        try:
            await asyncio.sleep(self.service(self.a.interactive_tokens, 0))
        finally:
            self.release()
        self.interactive.append(asyncio.get_running_loop().time() - arrived)

    def prefill(self, body: dict[str, Any]) -> float:
        msgs = body.get("messages") or [{"content": str(body.get("prompt") or body.get("input") or "")}]
        total = sum(len(str(m.get("content", ""))) for m in msgs) / 4
        last = len(str(msgs[-1].get("content", ""))) / 4
        if len(msgs) < 2:
            return total
        key = hashlib.blake2b(json.dumps(msgs[:-1], sort_keys=True).encode(), digest_size=8).digest()
        if key in self.cache:
            self.cache.move_to_end(key)
            self.hits += 1
            return last
        self.misses += 1
        self.cache[key] = None
        if len(self.cache) > self.a.cache:
            self.cache.popitem(last=False)
        return total

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        if not await self.acquire(float(body.get("priority") or 0)):
            self.rejected += 1
            return web.json_response(
                {"error": {"message": "engine full", "type": "server_error", "param": None, "code": None}},
                status=self.a.reject_status, headers={"Retry-After": str(self.a.retry_after)},
            )
        start = time.monotonic()
        self.first = self.first or start
        tokens = int(body.get("max_tokens") or self.a.tokens)
        prompt_uncached = self.prefill(body)
        service = self.service(tokens, prompt_uncached)
        in_use = self.a.slots - self.free
        self.max_busy = max(self.max_busy, in_use)
        try:
            if service > 0:
                await asyncio.sleep(service)
        finally:
            self.release()
        end = time.monotonic()
        self.busy += end - start
        self.last = end
        self.served += 1
        self.batch_served += 1
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        if digest in self.seen:
            self.repeated += 1
        self.seen.add(digest)
        return web.json_response({
            "id": "chatcmpl-sim", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "sim"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": int(prompt_uncached), "completion_tokens": tokens,
                      "total_tokens": int(prompt_uncached) + tokens},
            "answered_at": time.time(),  # for bench/follow.py: when the answer left the engine (unix seconds)
        })

    async def sample(self, app: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(0.5)
                if self.first is not None:
                    self.timeline.append(self.a.slots - self.free)

        task = asyncio.create_task(loop())
        self.interactive_task = asyncio.create_task(self.neighbour())
        yield
        task.cancel()
        self.interactive_task.cancel()

    def queue_quantile(self, q: float) -> int:
        total = sum(self.queue_time.values())
        seen = 0.0
        for length in sorted(self.queue_time):
            seen += self.queue_time[length]
            if seen >= q * total:
                return length
        return 0

    async def stats(self, request: web.Request) -> web.Response:
        wall = (self.last - self.first) if self.first else 0.0
        self.mark()
        span = (self.marked - self.since) if self.since is not None else 0.0
        return web.json_response({
            "busy_slot_seconds": self.busy, "wall": wall, "slots": self.a.slots, "served": self.served,
            "rejected": self.rejected, "cache_hits": self.hits, "cache_misses": self.misses,
            "saturation": self.busy / (self.a.slots * wall) if wall else 0.0, "max_busy": self.max_busy,
            "timeline": self.timeline,
            # time-weighted, over `seconds` since the last reset (or the first request after it)
            "seconds": span, "utilization": self.busy_area / (self.a.slots * span) if span > 0 else 0.0,
            "queue_mean": self.queue_area / span if span > 0 else 0.0, "queue_p95": self.queue_quantile(0.95),
            "queue_max": self.queue_max, "repeated": self.repeated,
            "batch_served": self.batch_served, "interactive": self.interactive_stats(),
        })

    def interactive_stats(self) -> dict[str, float]:
        xs = sorted(self.interactive)
        if not xs:
            return {"n": 0}
        q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
        return {"n": len(xs), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "mean": sum(xs) / len(xs)}

    async def set_interactive(self, request: web.Request) -> web.Response:
        self.interactive_rate = float((await request.json())["rate"])
        return web.json_response({"rate": self.interactive_rate})

    async def metrics(self, request: web.Request) -> web.Response:
        running = self.a.slots - self.free
        label = '{model_name="sim"}'
        text = (f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{label} {running}\n"
                f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{label} {self.waiting}\n"
                f"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{label} {running / self.a.slots}\n")
        return web.Response(text=text, content_type="text/plain")

    async def do_reset(self, request: web.Request) -> web.Response:
        self.reset()
        self.cache.clear()
        return web.json_response({"ok": True})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--base", type=float, default=0.5, help="seconds per request before tokens")
    p.add_argument("--per-token", type=float, default=0.0, help="seconds per output token")
    p.add_argument("--tokens", type=int, default=16, help="output tokens when the request has no max_tokens")
    p.add_argument("--prefill", type=float, default=0.0, help="seconds per uncached prompt token")
    p.add_argument("--cache", type=int, default=8, help="prompt prefixes the prefix cache holds")
    p.add_argument("--mode", choices=["queue", "reject"], default="queue")
    p.add_argument("--reject-status", type=int, default=429)
    p.add_argument("--retry-after", type=float, default=1)
    p.add_argument("--jitter", type=float, default=0.0, help="service times scaled by U(1-J, 1+J)")
    p.add_argument("--interactive-rate", type=float, default=0.0, help="neighbour's requests a second")
    p.add_argument("--interactive-tokens", type=int, default=16, help="output tokens of a neighbour's request")
    p.add_argument("--priority", action="store_true", help="queue by request priority (lower first)")
    a = p.parse_args()
    engine = Engine(a)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"):
        app.router.add_post(path, engine.handle)
    app.router.add_get("/_stats", engine.stats)
    app.router.add_get("/v1/models", lambda _: web.json_response({"object": "list", "data": [
        {"id": "sim", "object": "model", "created": 0, "owned_by": "simulator"}]}))
    app.cleanup_ctx.append(engine.sample)
    app.router.add_post("/_reset", engine.do_reset)
    app.router.add_post("/_interactive", engine.set_interactive)
    app.router.add_get("/metrics", engine.metrics)
    web.run_app(app, host=a.host, port=a.port, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
