"""An invisible neighbour (issue 16): an interactive user and a batch share one engine.

The engine is bench/simulator.py: 64 slots, requests of 100 ms +- 50% (`--jitter 0.5`), and its own interactive
neighbour arriving at random (open loop) at 10%, 30% and 60% of its capacity. For each load, side by side:

  alone        - the neighbour alone: its p99 latency is the reference;
  greedy       - a batch through batchgate with the ordinary window (fills the engine: 1.05x its slots + 2);
  neighbourly  - the route reads the engine's metrics (`engine_metrics = "vllm"`) and yields (`neighbourly`);
  priority     - the engine schedules by priority (`--priority`, as vLLM's priority policy) and the route
                 sends batch requests at `batch_priority = 10`; the ordinary window.

Reported per load and mode: the neighbour's p50/p99 and p99 / alone p99 (target <= 1.10), and the batch's
throughput as a share of the capacity the neighbour leaves idle (target >= 0.8). Then "return": the neighbour
at 60% stops, and the seconds until the batch again fills >= 0.95 of the engine (target <= 5 s). Then
"deadline pressure": a batch that meets its window only by taking some of the neighbour's headroom (it is at
risk, so its route stops yielding): whether it met it, since when it was at risk, and the neighbour's p99
meanwhile.

Run: .venv/bin/python bench/neighbour.py [--quick] [--measure 25] [--window 90] [--pressure]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import chat_lines, free_port, http_json, process, simulator
from openai import OpenAI

SLOTS, BASE = 64, 0.1
PRESSURE = 0.9  # the deadline-pressure batch: this much of the idle capacity over its whole window
CAPACITY = SLOTS / BASE  # requests a second
ROUTE = {
    "greedy": "",
    "neighbourly": 'engine_metrics = "vllm"\nneighbourly = true\n',
    "priority": "batch_priority = 10\n",
}


@contextmanager
def served(upstream: str, extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bg-neighbour-") as tmp:
        config = Path(tmp) / "routes.toml"
        config.write_text(f'[[upstreams]]\nname = "engine"\nurl = "{upstream}/v1"\n{extra}')
        with process([sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", tmp + "/data",
                      "--config", str(config)], f"http://127.0.0.1:{port}/health",
                     env={"BATCHGATE_LOG_LEVEL": "warning", **(env or {})}, log=Path(tmp) / "serve.log"):
            yield f"http://127.0.0.1:{port}/v1"


def submit(api: str, n: int) -> tuple[OpenAI, str]:
    client = OpenAI(base_url=api, api_key="bench", max_retries=0)
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in chat_lines(n, max_tokens=16))
    f = client.files.create(file=("neighbour.jsonl", data), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    return client, b.id


def measure(sim: str, seconds: float) -> dict[str, Any]:
    http_json(sim + "/_reset", {})
    time.sleep(seconds)
    st: dict[str, Any] = http_json(sim + "/_stats")
    st["batch_rate"] = st["batch_served"] / st["seconds"] if st["seconds"] else 0.0
    return st


def one(mode: str, rho: float, a: argparse.Namespace) -> dict[str, Any]:
    args = ["--slots", str(SLOTS), "--base", str(BASE), "--jitter", "0.5", "--interactive-rate",
            str(rho * CAPACITY)] + (["--priority"] if mode == "priority" else [])
    with simulator(*args) as sim:
        if mode == "alone":
            time.sleep(a.warmup)
            return measure(sim, a.measure)
        idle = (1 - rho) * CAPACITY
        with served(sim, ROUTE[mode]) as api:
            client, bid = submit(api, int(idle * (a.warmup + a.measure + 10)))
            time.sleep(a.warmup)
            st = measure(sim, a.measure)
            client.batches.cancel(bid)
            st["share"] = st["batch_rate"] / idle
            return st


def back(a: argparse.Namespace) -> float:
    """The neighbour at 60% stops: seconds until the batch fills >= 0.95 of the engine again (over 0.5 s)."""
    with simulator("--slots", str(SLOTS), "--base", str(BASE), "--jitter", "0.5", "--interactive-rate",
                   str(0.6 * CAPACITY)) as sim, served(sim, ROUTE["neighbourly"]) as api:
        client, bid = submit(api, int(CAPACITY * (a.warmup + 20)))
        time.sleep(a.warmup)
        http_json(sim + "/_interactive", {"rate": 0})
        stopped = time.monotonic()
        found = float("nan")
        while time.monotonic() - stopped < 15:
            st = measure(sim, 0.5)
            if st["utilization"] >= 0.95:
                found = time.monotonic() - stopped
                break
        client.batches.cancel(bid)
        return found


def pressure(a: argparse.Namespace, alone_p99: float) -> None:
    """A batch that meets its window only by taking some of the neighbour's headroom: the neighbour at 60%, a
    `24h` window scaled to `--window` seconds, and PRESSURE of what the idle capacity serves in it. Yielding
    (0.8-0.9 of the idle capacity in the runs above) would miss; the ordinary window (0.95, less its start) would
    meet it; at risk, the route stops yielding. More than the idle capacity is out of reach whatever the window:
    the engine serves the open-loop neighbour's requests in arrival order, and all of them."""
    rho, seconds = 0.6, a.window
    idle = (1 - rho) * CAPACITY
    n = int(PRESSURE * idle * seconds)
    env = {"BATCHGATE_WINDOW_SCALE": f"{seconds / 86400:.8g}"}
    with simulator("--slots", str(SLOTS), "--base", str(BASE), "--jitter", "0.5", "--interactive-rate",
                   str(rho * CAPACITY)) as sim, served(sim, ROUTE["neighbourly"], env) as api:
        http_json(sim + "/_reset", {})
        client, bid = submit(api, n)
        b = client.batches.retrieve(bid)
        risk = None
        while b.status not in ("completed", "failed", "cancelled", "expired"):
            time.sleep(0.5)
            b = client.batches.retrieve(bid)
            risk = risk or getattr(b, "at_risk_since", None)
        st = http_json(sim + "/_stats")
    i = st["interactive"]
    done = b.request_counts.completed if b.request_counts else 0
    end = b.completed_at or b.expired_at or 0
    since = f"at risk from {risk - b.created_at} s" if risk else "never at risk"
    met = "met" if b.status == "completed" and end <= b.expires_at else "missed"
    print(f"deadline pressure: neighbour at 60%, {n:,} lines in a {seconds:.0f} s window ({PRESSURE} of the idle "
          f"capacity for that long): {b.status}, {done:,} done, {end - b.created_at} s of "
          f"{b.expires_at - b.created_at} s (expires_at {met}; {since}); neighbour p99 "
          f"{i['p99'] * 1000:.0f} ms meanwhile (x{i['p99'] / alone_p99:.2f} of alone)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="30%% load only, shorter")
    p.add_argument("--warmup", type=float, default=12.0)
    p.add_argument("--measure", type=float, default=25.0)
    p.add_argument("--window", type=float, default=90.0, help="seconds of the deadline-pressure batch's window")
    p.add_argument("--pressure", action="store_true", help="only the deadline-pressure run")
    a = p.parse_args()
    if a.pressure:
        pressure(a, one("alone", 0.6, a)["interactive"]["p99"])
        return
    if a.quick:
        a.warmup, a.measure = 8.0, 12.0
    loads = (0.3,) if a.quick else (0.1, 0.3, 0.6)
    alone: dict[float, float] = {}
    print(f"engine: {SLOTS} slots of {BASE * 1000:.0f} ms +-50%; neighbour open loop; measured over {a.measure:.0f} s")
    for rho in loads:
        ref = one("alone", rho, a)["interactive"]
        alone[rho] = ref["p99"]
        print(f"load {rho:.0%}: neighbour alone p50 {ref['p50'] * 1000:.0f} ms, p99 {ref['p99'] * 1000:.0f} ms")
        for mode in ("greedy", "neighbourly", "priority"):
            st = one(mode, rho, a)
            i = st["interactive"]
            print(f"  {mode:<12} neighbour p50 {i['p50'] * 1000:4.0f} ms p99 {i['p99'] * 1000:4.0f} ms "
                  f"(x{i['p99'] / ref['p99']:.2f} of alone); batch {st['batch_rate']:.0f} req/s = "
                  f"{st['share']:.2f} of the idle capacity; engine queue p95 {st['queue_p95']}")
    print(f"return: the neighbour at 60% stops; the batch fills >= 0.95 of the engine after {back(a):.1f} s")
    if not a.quick:
        pressure(a, alone[0.6])


if __name__ == "__main__":
    main()
