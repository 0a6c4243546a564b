"""Route pools (issue 14): several simulated replicas behind one route of a routing file, each scenario one run.

- capacity: 4 replicas, one twice as fast. ratio = throughput / the sum of the replicas' capacities
  (slots / service time each). Target >= 0.95. Also prints, as a control, one replica of the same total capacity
  through the same path.
- affinity: 4 replicas, each with a bounded prefix cache, 200 system prompts interleaved at random; the same batch
  with prefix affinity (the default) and with BATCHGATE_PREFIX_AFFINITY=false (spread by free capacity alone).
  ratio = affinity / spread throughput. Target >= 1.5.
- loss: 4 replicas; one is killed (SIGKILL: connections reset mid-request) a few seconds into the batch and
  started again `--down` seconds later. Target: 0 failed lines, the batch completes.
- outage: the only replica is killed in the middle of the batch and started again `--down` seconds later.
  Target: 0 failed lines, the batch completes after it returns.

Run: .venv/bin/python bench/pools.py capacity|affinity|loss|outage [--requests N] [--down S]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import ROOT, chat_lines, free_port, http_json, process, run_batch, wait_http


class Sim:
    """A simulator on a fixed port that can be killed and started again."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "simulator.py"), "--port", str(self.port),
                                      *self.args], stdout=subprocess.DEVNULL)
        wait_http(self.url + "/_stats")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stats(self) -> dict[str, Any]:
        return http_json(self.url + "/_stats")  # type: ignore[no-any-return]


@contextmanager
def sims(specs: list[tuple[str, ...]]) -> Iterator[list[Sim]]:
    made = [Sim(*spec) for spec in specs]
    try:
        for s in made:
            s.start()
        yield made
    finally:
        for s in made:
            s.kill()


@contextmanager
def pool(replicas: list[Sim], env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bg-pools-") as tmp:
        config = Path(tmp) / "routes.toml"
        urls = ", ".join(f'"{s.url}/v1"' for s in replicas)
        config.write_text(f'[[upstreams]]\nname = "pool"\nurls = [{urls}]\n')
        with process([sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", tmp + "/data",
                      "--config", str(config)], f"http://127.0.0.1:{port}/health",
                     env={"BATCHGATE_LOG_LEVEL": "warning", **(env or {})}, log=Path(tmp) / "serve.log"):
            yield f"http://127.0.0.1:{port}/v1"


def capacity(a: argparse.Namespace) -> None:
    slots, base = 16, 0.2
    specs = [("--slots", str(slots), "--base", str(base / 2 if i == 0 else base), "--mode", "queue")
             for i in range(4)]
    cap = slots / (base / 2) + 3 * slots / base
    lines = chat_lines(a.requests, max_tokens=16)
    with sims(specs) as replicas, pool(replicas) as api:
        secs, b = run_batch(api, lines)
        st = [r.stats() for r in replicas]
    served = [s["served"] for s in st]
    print("saturation per replica:", [round(s["saturation"], 2) for s in st], "max busy:",
          [s["max_busy"] for s in st], "wall:", [round(s["wall"], 1) for s in st])
    assert b.request_counts.completed == a.requests, b
    rate = a.requests / secs
    print(f"4 replicas (one 2x faster): capacity {cap:.0f} req/s, served {served} (fast first)")
    print(f"throughput {rate:.1f} req/s in {secs:.1f} s")
    # Control, side by side: one replica of the same total capacity (80 slots at 0.2 s) through the same path, so
    # what the window and the batch path lose on their own shows apart from what splitting into replicas loses.
    one = ("--slots", str(int(cap * base)), "--base", str(base), "--mode", "queue")
    with sims([one]) as single, pool(single) as api:
        secs1, b1 = run_batch(api, lines)
        st1 = single[0].stats()
    assert b1.request_counts.completed == a.requests, b1
    rate1 = a.requests / secs1
    print(f"one replica of the same capacity: {rate1:.1f} req/s in {secs1:.1f} s ({rate1 / cap:.3f} of capacity)")
    print(f"  its saturation {st1['saturation']:.2f}, max busy {st1['max_busy']}, wall {st1['wall']:.1f} s")
    print(f"ratio pool/one replica: {rate / rate1:.3f}")
    print(f"ratio throughput/capacity: {rate / cap:.3f}")


def affinity(a: argparse.Namespace) -> None:
    rng = random.Random(14)
    systems = [f"You are assistant #{p}. " + "Follow the house style guide carefully. " * 60 for p in range(200)]
    picks = [rng.randrange(200) for _ in range(a.requests)]

    def prompt_of(i: int) -> list[dict[str, str]]:
        return [{"role": "system", "content": systems[picks[i]]}, {"role": "user", "content": f"question {i}"}]

    lines = chat_lines(a.requests, prompt_of, max_tokens=16)
    spec = ("--slots", "32", "--base", "0.02", "--per-token", "0.001", "--prefill", "0.0002", "--cache", "64",
            "--mode", "queue")
    results = {}
    for name, on in (("spread", "false"), ("affinity", "true")):
        with sims([spec] * 4) as replicas, pool(replicas, {"BATCHGATE_PREFIX_AFFINITY": on}) as api:
            secs, b = run_batch(api, lines)
            st = [r.stats() for r in replicas]
        assert b.request_counts.completed == a.requests, b
        hits = sum(s["cache_hits"] for s in st)
        hit = hits / max(1, hits + sum(s["cache_misses"] for s in st))
        results[name] = a.requests / secs
        print(f"{name:9} {secs:6.1f} s  {results[name]:7.1f} req/s  prefix-cache hit rate {hit:.2f}")
    print(f"ratio affinity/spread: {results['affinity'] / results['spread']:.2f}")


def loss(a: argparse.Namespace, replicas_n: int) -> None:
    spec = ("--slots", "16", "--base", "0.2", "--mode", "queue") if replicas_n > 1 else \
        ("--slots", "32", "--base", "0.1", "--mode", "queue")
    lines = chat_lines(a.requests, max_tokens=16)
    with sims([spec] * replicas_n) as replicas, pool(replicas, {"BATCHGATE_LOG_LEVEL": "warning"}) as api:
        victim = replicas[-1]
        events: list[str] = []
        t0 = time.monotonic()

        def chaos() -> None:
            time.sleep(a.after)
            victim.kill()
            events.append(f"killed {victim.url} at {time.monotonic() - t0:.1f} s")
            time.sleep(a.down)
            victim.start()
            events.append(f"started it again at {time.monotonic() - t0:.1f} s")

        thread = threading.Thread(target=chaos)
        thread.start()
        secs, b = run_batch(api, lines)
        thread.join()
        after = victim.stats()["served"]
    c = b.request_counts
    for e in events:
        print(e)
    print(f"batch {b.status} in {secs:.1f} s: {c.completed} completed, {c.failed} failed of {c.total}; "
          f"the returned replica served {after} after it came back")
    print(f"failed lines: {c.failed}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["capacity", "affinity", "loss", "outage"])
    ap.add_argument("--requests", type=int, default=0, help="lines in the batch (default per scenario)")
    ap.add_argument("--down", type=float, default=0, help="seconds a replica stays down (loss 30, outage 60)")
    ap.add_argument("--after", type=float, default=0, help="seconds into the batch the replica is killed")
    a = ap.parse_args()
    defaults = {"capacity": (12000, 0, 0), "affinity": (6000, 0, 0), "loss": (12000, 30, 5),
                "outage": (5000, 60, 5)}[a.scenario]
    a.requests = a.requests or defaults[0]
    a.down = a.down or defaults[1]
    a.after = a.after or defaults[2]
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    if a.scenario == "capacity":
        capacity(a)
    elif a.scenario == "affinity":
        affinity(a)
    else:
        loss(a, 4 if a.scenario == "loss" else 1)


if __name__ == "__main__":
    main()
