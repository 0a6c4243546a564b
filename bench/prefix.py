"""Prefix-aware dispatch order: 50 system prompts interleaved at random, against the engine simulator with a
bounded prefix cache (8 prefixes) and a prefill cost per uncached prompt token. The same batch runs twice in
one run: dispatched in input order (BATCHGATE_PREFIX_GROUPING=false) and grouped by prefix (the default).

ratio = grouped throughput / input-order throughput. Run: .venv/bin/python bench/prefix.py [--requests 6000]
"""

from __future__ import annotations

import argparse
import random

from common import batchgate, chat_lines, http_json, run_batch, simulator

SLOTS = 64


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--prompts", type=int, default=50)
    args = ap.parse_args()
    rng = random.Random(7)
    systems = [f"You are assistant #{p}. " + "Follow the house style guide carefully. " * 60
               for p in range(args.prompts)]  # ~600 tokens each
    picks = [rng.randrange(args.prompts) for _ in range(args.requests)]

    def prompt_of(i: int) -> list[dict[str, str]]:
        return [{"role": "system", "content": systems[picks[i]]}, {"role": "user", "content": f"question {i}"}]

    lines = chat_lines(args.requests, prompt_of, max_tokens=16)
    sim_args = ("--slots", str(SLOTS), "--base", "0.02", "--per-token", "0.001", "--prefill", "0.0002",
                "--cache", "8", "--mode", "queue")
    results = {}
    for name, grouping in (("input order", "false"), ("prefix-grouped", "true")):
        with simulator(*sim_args) as sim, batchgate(sim, env={"BATCHGATE_PREFIX_GROUPING": grouping}) as api:
            secs, b = run_batch(api, lines)
            st = http_json(sim + "/_stats")
        assert b.request_counts.completed == args.requests, b
        hit = st["cache_hits"] / max(1, st["cache_hits"] + st["cache_misses"])
        results[name] = args.requests / secs
        print(f"{name:15} {secs:6.1f} s  {results[name]:7.1f} req/s  prefix-cache hit rate {hit:.2f}")
    print(f"ratio grouped/input-order: {results['prefix-grouped'] / results['input order']:.2f}")


if __name__ == "__main__":
    main()
