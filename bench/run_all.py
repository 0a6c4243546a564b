"""Run every benchmark and write docs/benchmarks.md with their latest figures, the machine and the commands.

Run: .venv/bin/python bench/run_all.py [--quick] [--only overhead,saturation,...]
Each benchmark is its own script (run it alone to iterate); this one runs them one after another, so they
never compete with each other for the two cores, and records what each printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# name, title, target, full command, quick command
BENCHES = [
    ("overhead", "Overhead of the batch path (issue 5.1)",
     "batch/raw >= 0.6, aim 0.9",
     ["bench/overhead.py", "--requests", "50000"], ["bench/overhead.py", "--requests", "10000"]),
    ("clients", "Upstream HTTP clients: CPU per request (issue 5.1, why batchgate has its own)",
     "none (it explains the overhead figure): aiohttp/http11 client CPU per request",
     ["bench/clients.py"], ["bench/clients.py", "--requests", "5000"]),
    ("window", "A window that fills without flooding; saturation without tuning (issues 13.5, 5.2)",
     "steady-state utilization >= 0.97 in queue mode, >= 0.95 in 429 mode; requests queued inside the engine "
     "<= 0.25 of its slots (mean and p95); zero failed requests; re-sends after kill -9 <= 2x the window",
     ["bench/window.py"], ["bench/window.py", "--quick"]),
    ("prefix", "Prefix-aware dispatch order (issue 5.3)",
     "grouped/input-order throughput >= 1.25",
     ["bench/prefix.py"], ["bench/prefix.py", "--requests", "2000"]),
    ("ingest", "Ingest: validating 200 MB / 50,000 lines (issue 5.4)",
     "validation >= 0.5 of a bare orjson parse; peak RSS < 150 MB above idle",
     ["bench/ingest.py"], ["bench/ingest.py", "--lines", "10000"]),
    ("large", "Large batches: 1,000,000 lines (1 GB) through run and serve (issue 11.4)",
     "peak RSS < 300 MB; time <= 22x a 50,000-line batch's; validation >= 0.5 of a bare orjson parse",
     ["bench/large.py"], ["bench/large.py", "--lines", "100000", "--small", "10000"]),
    ("latency", "Latency to result (issue 5.5)",
     "2-request batch, create -> completed, median < 1 s",
     ["bench/latency.py"], ["bench/latency.py", "--runs", "5"]),
    ("state", "Scale of state: 10 x 50,000 requests queued at once (issue 5.6)",
     "API p99 < 20 ms; throughput within 10% of one batch alone",
     ["bench/state.py"], ["bench/state.py", "--batches", "3", "--requests", "5000"]),
    ("fairness", "Fair share on a shared engine: head of line and weighted shares (issue 13.1, 13.2)",
     "10-line batch behind three 20,000-line batches <= 3 s + its time alone; shares 1:1 -> 50% +- 5, "
     "3:1 -> 75% +- 5, saturation >= 0.95",
     ["bench/fairness.py"], ["bench/fairness.py", "--quick"]),
    ("deadlines", "Deadlines and estimated completion (issue 13.3, 13.4)",
     "every window of the mix met; estimate at 10% within +-20% of the remaining time for >= 90% of batches",
     ["bench/deadlines.py"], ["bench/deadlines.py", "--quick"]),
    ("local", "Local models through a batch (issues 3.8, 5.7)",
     "batch/direct > 0.9",
     ["bench/local_batch.py"], ["bench/local_batch.py", "--embeddings", "512", "--chats", "8"]),
    ("follow", "Following results while a 50,000-line batch runs: 50 clients (issue 15.1)",
     "p99 engine answer -> follower < 1 s; followed/alone batch throughput >= 0.95",
     ["bench/follow.py"], ["bench/follow.py", "--requests", "10000", "--followers", "20"]),
    ("pool-capacity", "Route pools: 4 replicas, one twice as fast (issue 14)",
     "throughput >= 0.95 of the sum of the replicas' capacities",
     ["bench/pools.py", "capacity"], ["bench/pools.py", "capacity", "--requests", "4000"]),
    ("pool-affinity", "Route pools: prefix-cache affinity, 4 replicas, 200 system prompts (issue 14)",
     "affinity/spread-by-free-capacity throughput >= 1.5",
     ["bench/pools.py", "affinity"], ["bench/pools.py", "affinity", "--requests", "3000"]),
    ("pool-loss", "Route pools: one of 4 replicas killed mid-batch, back 30 s later (issue 14)",
     "0 failed lines, the batch completes",
     ["bench/pools.py", "loss"], ["bench/pools.py", "loss", "--requests", "6000", "--down", "10"]),
    ("pool-outage", "Route pools: the only upstream down 60 s mid 5,000-line batch (issue 14)",
     "0 failed lines, the batch completes after it returns",
     ["bench/pools.py", "outage"], ["bench/pools.py", "outage", "--requests", "2000", "--down", "15"]),
    ("llamacpp", "A real engine: llama.cpp's server, 8 slots, batch vs. a direct client (issue 13.5)",
     "batch/direct tokens/s >= 0.95 with no upstream timeouts at a request timeout of 3x the direct slowest answer",
     ["bench/llamacpp.py"], ["bench/llamacpp.py", "--requests", "64", "--pairs", "2"]),
    ("neighbour", "An invisible neighbour: a user beside a batch on one engine (issue 16)",
     "interactive p99 <= 1.10x its p99 without a batch at 10/30/60% load, the batch >= 0.8 of the idle capacity; "
     "back to >= 0.95 of saturation within 5 s of the user leaving; a batch that needs some of the user's "
     "headroom meets its window",
     ["bench/neighbour.py"], ["bench/neighbour.py", "--quick"]),
    ("neighbour-llamacpp", "An invisible neighbour on a real engine: llama.cpp's server, a user beside a batch "
     "(issue 16)",
     "the neighbour measurement against llama.cpp's own HTTP server: at interactive loads of 10%, 30% and 60% of the "
     "engine's capacity, interactive p99 within 1.10x of its p99 without a batch, and the batch keeps >= 0.8 of the "
     "capacity the interactive traffic leaves idle (2 shared CPU cores: the batch's decoding slows the interactive "
     "requests even when none waits)",
     ["bench/neighbour_llama.py"], ["bench/neighbour_llama.py", "--quick"]),
    ("message_batches", "Anthropic Message Batches over an OpenAI batch of the same requests (issue 15.5)",
     "none (the cost of the translation): message batch / openai batch time",
     ["bench/message_batches.py"], ["bench/message_batches.py", "--requests", "2000"]),
]


def stamp() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {rev.strip()}"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def recorded_sections(path: Path) -> dict[str, str]:
    """The generated sections of an existing benchmarks page, by title (what `--only` keeps)."""
    if not path.exists():
        return {}
    titles = {b[1] for b in BENCHES}
    found: dict[str, str] = {}
    for part in ("\n" + path.read_text()).split("\n## ")[1:]:
        title = part.split("\n", 1)[0].strip()
        if title in titles:
            found[title] = "## " + part.rstrip("\n") + "\n"
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller runs (minutes instead of a quarter hour)")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(b[0] for b in BENCHES)
                    + " (the other sections of --out are kept as they were recorded, each with its own date)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    unknown = only - {b[0] for b in BENCHES}
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    kept = recorded_sections(Path(args.out)) if only else {}
    sections = []
    for name, title, target, full, quick in BENCHES:
        if only and name not in only:
            if title in kept:
                sections.append(kept[title])
            continue
        cmd = quick if args.quick else full
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.monotonic()
        r = subprocess.run([PY, *cmd], cwd=ROOT, capture_output=True, text=True)
        took = time.monotonic() - t0
        out = (r.stdout.strip() or "(no output)") + (f"\n[exit {r.returncode}] {r.stderr.strip()[-1500:]}"
                                                      if r.returncode else "")
        print(out, flush=True)
        sections.append(f"## {title}\n\nTarget: {target}.\n\nCommand: `.venv/bin/python {' '.join(cmd)}` "
                        f"({took:.0f} s)\n\nMeasured: {stamp()}.\n\n```\n{out}\n```\n")
    notes_file = ROOT / "docs" / "benchmarks-notes.md"
    notes = notes_file.read_text() if notes_file.exists() else ""
    doc = ("# Benchmarks\n\nGenerated by `.venv/bin/python bench/run_all.py"
           + (" --quick" if args.quick else "") + f"` (with `--only`, one section at a time: each says when and on "
           f"which commit it was measured).\n\nMachine: {machine()}. These machines have 2 shared cores: "
           "every figure is a ratio of two measurements taken side by side in the same run; absolute rates drift "
           "with whatever else the machine is doing.\n\n" + "\n".join(sections) + "\n" + notes)
    Path(args.out).write_text(doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
