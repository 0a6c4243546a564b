"""How fast a pause stops dispatch: one `batchgate serve` against the fake upstream (fixed latency), one batch paused
and resumed several times while it runs. For each pause: the time from sending the pause request to the last
request that reached the upstream (the fake upstream stamps every arrival with the machine's monotonic clock, the
clock this script reads), and how many requests arrived after the pause was sent (those already admitted, and
those sent before the worker's heartbeat saw the pause). At the end, every line must have been sent exactly once.

With `--split`, the API and the worker are separate processes (`serve --no-worker` and `batchgate worker`): the
worker learns of the pause from its chunk heartbeat (at most every second) instead of at once from the API of its
own process.

Run: .venv/bin/python bench/pause.py [--requests 6000] [--pauses 5] [--latency 0.2] [--concurrency 64] [--split]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common import ROOT, batchgate, chat_lines, free_port, http_json, process, split_batchgate
from openai import OpenAI
from openai.types import Batch


@contextmanager
def fake_upstream(latency: float) -> Iterator[str]:
    port = free_port()
    with process([sys.executable, str(ROOT / "tests" / "support" / "fake_upstream.py"), "--port", str(port)],
                 f"http://127.0.0.1:{port}/_stats"):
        url = f"http://127.0.0.1:{port}"
        http_json(url + "/_control", {"latency": latency})
        yield url


def arrivals(upstream: str) -> list[float]:
    stats = http_json(upstream + "/_stats")
    return sorted(t for times in stats["times_by_key"].values() for t in times)


def settled(upstream: str, quiet: float) -> list[float]:
    """The arrivals once none came for `quiet` seconds."""
    seen = len(arrivals(upstream))
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        now = len(arrivals(upstream))
        if now != seen:
            seen, since = now, time.monotonic()
    return arrivals(upstream)


def done(b: Batch) -> int:
    return 0 if b.request_counts is None else b.request_counts.completed + b.request_counts.failed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--pauses", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--split", action="store_true", help="API and worker in separate processes")
    a = ap.parse_args()
    env = {"BATCHGATE_UPSTREAM_CONCURRENCY": str(a.concurrency)}
    stops: list[float] = []
    after: list[int] = []
    with fake_upstream(a.latency) as upstream, \
            (split_batchgate(upstream, env) if a.split else batchgate(upstream, env)) as base_url:
        client = OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        lines: list[dict[str, Any]] = chat_lines(a.requests)
        f = client.files.create(file=("pause.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        step = a.requests // (a.pauses + 1)
        for k in range(1, a.pauses + 1):
            while done(client.batches.retrieve(b.id)) < k * step:
                time.sleep(0.05)
            sent = time.monotonic()
            client.post(f"/batches/{b.id}/pause", cast_to=Batch, body={})
            seen = settled(upstream, quiet=3 * a.latency + 2.0)
            late = [t for t in seen if t > sent]
            stops.append((late[-1] - sent) if late else 0.0)
            after.append(len(late))
            print(f"pause {k}: last request reached the upstream {stops[-1] * 1000:.0f} ms after the pause was "
                  f"sent; {len(late)} arrived after it; {len(seen)} of {a.requests} sent so far", flush=True)
            client.post(f"/batches/{b.id}/resume", cast_to=Batch, body={})
        while (final := client.batches.retrieve(b.id)).status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.1)
        counts = http_json(upstream + "/_stats")["by_key"]
        assert final.status == "completed" and final.request_counts is not None, final
        assert final.request_counts.completed == a.requests, final.request_counts
        once = len(counts) == a.requests and max(counts.values()) == 1
    where = "split API and worker" if a.split else "one process"
    print(f"\n{where}: {a.pauses} pauses, {a.requests} requests, latency {a.latency * 1000:.0f} ms, "
          f"{a.concurrency} at a time: dispatch stopped {statistics.median(stops) * 1000:.0f} ms (median), "
          f"{max(stops) * 1000:.0f} ms (max) after the pause was sent; requests arriving after it: "
          f"median {statistics.median(after):.0f}, max {max(after)}; every line sent exactly once: {once}")


if __name__ == "__main__":
    main()
