"""What Anthropic's Message Batches cost over an OpenAI batch of the same requests: one `batchgate serve` against
the engine simulator, the same N requests run as an OpenAI chat completions batch and as a Message Batch (each line
translated to a chat completion and its answer back to a Message), alternately, side by side in one run.

Run: .venv/bin/python bench/message_batches.py [--requests 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from anthropic import Anthropic
from common import batchgate, chat_lines, run_batch, simulator


def run_message_batch(base_url: str, n: int, timeout: float = 1800) -> float:
    """Create a Message Batch of `n` requests and wait until it has ended; seconds from create to ended."""
    client = Anthropic(base_url=base_url.removesuffix("/v1"), api_key="bench", max_retries=0, timeout=600)
    requests: Any = [{"custom_id": f"r{i}", "params": {
        "model": "sim", "max_tokens": 16, "messages": [{"role": "user", "content": f"request {i}"}]}}
        for i in range(n)]
    t0 = time.monotonic()
    batch = client.messages.batches.create(requests=requests)
    while batch.processing_status != "ended":
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(batch)
        time.sleep(0.05)
        batch = client.messages.batches.retrieve(batch.id)
    elapsed = time.monotonic() - t0
    assert batch.request_counts.succeeded == n, batch
    client.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    lines = chat_lines(args.requests, max_tokens=16)
    openai_s: list[float] = []
    anthropic_s: list[float] = []
    with simulator("--slots", "100000", "--base", "0") as sim, batchgate(sim) as base:
        for _ in range(args.rounds):
            seconds, batch = run_batch(base, lines)
            assert batch.request_counts.completed == args.requests, batch
            openai_s.append(seconds)
            anthropic_s.append(run_message_batch(base, args.requests))
            print(f"openai batch {openai_s[-1]:6.2f} s   message batch {anthropic_s[-1]:6.2f} s")
    o, a = min(openai_s), min(anthropic_s)
    print(f"{args.requests} requests: openai {args.requests / o:,.0f} req/s, message batch {args.requests / a:,.0f} "
          f"req/s; message batch / openai time: {a / o:.2f}")


if __name__ == "__main__":
    main()
