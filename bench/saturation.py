"""Saturation without tuning: batchgate (default settings, no concurrency configured) against the engine
simulator with 32, 256 and 1,024 slots, in queue mode and in 429 mode.

saturation = busy slot-seconds / (slots x wall time), read from the simulator.

Run: .venv/bin/python bench/saturation.py [--quick]
"""

from __future__ import annotations

import argparse
import sys

from common import batchgate, chat_lines, http_json, run_batch, simulator

CASES = [  # slots, base service seconds, requests
    (32, 0.25, 2_000),
    (256, 0.5, 10_000),
    (1024, 2.0, 30_000),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests (CI smoke run)")
    ap.add_argument("--modes", default="queue,reject")
    ap.add_argument("--slots", default="", help="only these slot counts, e.g. 1024 (default: all cases)")
    args = ap.parse_args()
    rows = []
    for mode in args.modes.split(","):
        for slots, base, n in CASES:
            if args.slots and str(slots) not in args.slots.split(","):
                continue
            if args.quick:
                n = max(slots * 4, n // 10)
            with simulator("--slots", str(slots), "--base", str(base), "--mode", mode,
                           "--retry-after", "1") as sim, batchgate(sim) as api:
                elapsed, b = run_batch(api, chat_lines(n))
                st = http_json(sim + "/_stats")
            c = b.request_counts
            rows.append((mode, slots, n, elapsed, st["saturation"], c.failed, st["rejected"], st["max_busy"]))
            print(f"{mode:6} slots={slots:5} n={n:6} {elapsed:7.1f}s saturation={st['saturation']:.3f} "
                  f"failed={c.failed} rejected={st['rejected']} max_busy={st['max_busy']}", flush=True)
    print("\n| mode | slots | requests | seconds | saturation | failed | 429s sent |")
    print("|---|---|---|---|---|---|---|")
    for mode, slots, n, el, sat, failed, rej, _ in rows:
        print(f"| {mode} | {slots} | {n} | {el:.1f} | {sat:.3f} | {failed} | {rej} |")
    ok = all(sat >= (0.95 if mode == "queue" else 0.90) and failed == 0 for mode, _, _, _, sat, failed, _, _ in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
