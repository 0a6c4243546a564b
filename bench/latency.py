"""Latency to result: a 2-request batch against an instant upstream, from create to `completed` (output file
written), median and max of 20 runs. Run: .venv/bin/python bench/latency.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics

from common import batchgate, chat_lines, run_batch, simulator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    times = []
    with simulator("--slots", "1000", "--base", "0") as sim, batchgate(sim) as api:
        run_batch(api, chat_lines(2))  # warm-up
        for _ in range(args.runs):
            secs, b = run_batch(api, chat_lines(2))
            assert b.status == "completed" and b.output_file_id, b
            times.append(secs)
    print(f"create -> completed, 2 requests, {args.runs} runs: median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"median seconds (target < 1): {statistics.median(times):.3f}")


if __name__ == "__main__":
    main()
