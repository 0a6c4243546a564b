"""Scale of state: 10 batches of 50,000 requests queued at once against an instant upstream. While they run,
a poller times API calls (batches.retrieve and batches.list, over plain HTTP and through the official SDK);
total throughput is compared with one batch of the same size alone, in the same run.

Run: .venv/bin/python bench/state.py [--batches 10] [--requests 50000] [--split]
(--split: the API in `serve --no-worker` and the worker in `batchgate worker`, two processes.)
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from common import batchgate, chat_lines, simulator, split_batchgate
from openai import OpenAI

TERMINAL = ("completed", "failed", "cancelled", "expired")


def submit(client: OpenAI, n: int, tag: str) -> str:
    data = b"".join(json.dumps({**x, "custom_id": f"{tag}-{x['custom_id']}"}).encode() + b"\n"
                    for x in chat_lines(n))
    f = client.files.create(file=(f"{tag}.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id


def wait_all(client: OpenAI, ids: list[str]) -> None:
    pending = set(ids)
    while pending:
        time.sleep(0.5)
        pending = {i for i in pending if client.batches.retrieve(i).status not in TERMINAL}


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--split", action="store_true", help="API and worker in two processes (serve --no-worker)")
    args = ap.parse_args()
    with simulator("--slots", "100000", "--base", "0") as sim, \
            (split_batchgate(sim) if args.split else batchgate(sim)) as api:
        client = OpenAI(base_url=api, api_key="bench", max_retries=0, timeout=120)
        # one batch alone
        t0 = time.monotonic()
        wait_all(client, [submit(client, args.requests, "solo")])
        solo_rps = args.requests / (time.monotonic() - t0)

        ids = [submit(client, args.requests, f"b{i}") for i in range(args.batches)]
        # This process's own collector walked what the submissions left (40-90 ms pauses, timed as the API's):
        # what exists now is never garbage.
        gc.collect()
        gc.freeze()
        t0 = time.monotonic()
        timings: dict[str, list[float]] = {"retrieve": [], "list": [], "retrieve (SDK)": [], "list (SDK)": []}
        stop = threading.Event()

        def poll() -> None:
            # Each round times each call twice: over plain HTTP (one keep-alive connection, the server's
            # latency) and through the official SDK (that plus the SDK's own request building and parsing,
            # ~1.4 ms of client CPU per call on an idle machine).
            c = OpenAI(base_url=api, api_key="bench", max_retries=0, timeout=120)
            u = urlsplit(api)
            conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=120)
            auth = {"Authorization": "Bearer bench"}

            def raw(path: str) -> None:
                conn.request("GET", u.path + path, headers=auth)
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status

            calls: list[tuple[str, Callable[[int], object]]] = [
                ("retrieve", lambda i: raw(f"/batches/{ids[i % len(ids)]}")),
                ("list", lambda i: raw("/batches?limit=20")),
                ("retrieve (SDK)", lambda i: c.batches.retrieve(ids[i % len(ids)])),
                ("list (SDK)", lambda i: c.batches.list(limit=20)),
            ]
            i = 0
            while not stop.is_set():
                for name, call in calls:
                    s = time.perf_counter()
                    call(i)
                    timings[name].append(time.perf_counter() - s)
                    time.sleep(0.025)
                i += 1
            conn.close()
            c.close()

        poller = threading.Thread(target=poll)
        poller.start()
        wait_all(client, ids)
        many_s = time.monotonic() - t0
        stop.set()
        poller.join()
        client.close()
    many_rps = args.batches * args.requests / many_s
    for name, vals in timings.items():
        print(f"{name:14} n={len(vals):5} p50 {statistics.median(vals) * 1000:6.1f} ms  "
              f"p99 {pct(vals, 0.99) * 1000:6.1f} ms  max {max(vals) * 1000:6.1f} ms")
    print(f"one batch alone: {solo_rps:,.0f} req/s; {args.batches} batches at once: {many_rps:,.0f} req/s")
    print(f"ratio many/solo throughput: {many_rps / solo_rps:.2f}")


if __name__ == "__main__":
    main()
