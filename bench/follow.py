"""Following results while a batch runs (issue 15.1): 50 clients follow GET /v1/batches/{id}/results (server-sent
events, or long polls with --mode poll) while a 50,000-line batch runs on the engine simulator. Reports how long
each line takes from the engine's answer (the simulator stamps `answered_at` in each body) to each follower
(p50/p99/max over every line and follower), that every follower got every custom_id exactly once, and the batch's
throughput with the followers against the same batch without them, measured in the same run (alternately: alone,
followed, alone, ..., alone; the ratio is of the mean rates, and each run's rate is printed, so the machine's
drift shows).

Run: .venv/bin/python bench/follow.py [--requests 50000] [--followers 50] [--slots 128] [--base 0.1] [--rounds 2]
    [--mode poll]
The simulator is the bottleneck by design (slots/base requests per second): followers must not slow a batch the
engine paces, and their lines must arrive within a second. The followers run on the same cores as the servers: 45
of them in a second process at nice 19 (--nice), standing for clients on other machines (the CPU they need to
parse 45 x 50,000 lines must not be taken from the server here), and 5 probes in this one at normal priority,
which time the lines (a starved client would time its own waiting, not the server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

import orjson
from common import batchgate, chat_lines, simulator
from openai import OpenAI

TERMINAL = ("completed", "failed", "cancelled", "expired")


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def run(client: OpenAI, file_id: str) -> tuple[str, float]:
    """Create a batch from the file; (its id, seconds from create to completed)."""
    t0 = time.monotonic()
    b = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    return b.id, t0


def wait(client: OpenAI, batch_id: str, t0: float) -> float:
    while (b := client.batches.retrieve(batch_id)).status not in TERMINAL:
        time.sleep(0.1)
    assert b.status == "completed", b
    return time.monotonic() - t0


class Follower(threading.Thread):
    """One client following the batch from cursor 0 to done over a keep-alive connection."""

    def __init__(self, api: str, batch_id: str, stream: bool) -> None:
        super().__init__(daemon=True)
        self.u = urlsplit(api)
        self.batch_id = batch_id
        self.stream = stream
        self.delays: list[float] = []
        self.ids: list[str] = []
        self.pages = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.u.hostname or "127.0.0.1", self.u.port, timeout=120)
        path = f"{self.u.path}/batches/{self.batch_id}/results?limit=10000"
        if self.stream:  # one request: a server-sent event per page
            conn.request("GET", path + "&stream=true", headers={"Authorization": "Bearer bench"})
            r = conn.getresponse()
            assert r.status == 200, r.read()[:200]
            while True:
                raw = r.readline()
                if raw.startswith(b"data: ") and self.take(raw[6:], time.time()):
                    break
        else:  # a long poll per page
            cursor = "0"
            while True:
                try:
                    conn.request("GET", f"{path}&after={cursor}&wait=10", headers={"Authorization": "Bearer bench"})
                    r = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionError):
                    # the server closes a keep-alive connection idle for 5 s: a starved (niced) follower's
                    conn.close()
                    conn = http.client.HTTPConnection(self.u.hostname or "127.0.0.1", self.u.port, timeout=120)
                    continue
                raw = r.read()
                assert r.status == 200, raw[:200]
                if self.take(raw, time.time()):
                    break
                cursor = orjson.loads(raw)["cursor"]
        conn.close()

    def take(self, raw: bytes, got: float) -> bool:
        """Note a page's lines (received at `got`); whether it was the last."""
        page = orjson.loads(raw)
        self.pages += 1
        for line in page["data"]:
            self.ids.append(line["custom_id"])
            body = (line.get("response") or {}).get("body") or {}
            if "answered_at" in body:
                self.delays.append(got - body["answered_at"])
        return bool(page["done"])


def follow_in_background(api: str, batch_id: str, n: int, stream: bool, nice: int, want: list[str],
                         out: Connection) -> None:
    """A process of `n` followers at `nice`: it sends back how many got every custom_id exactly once, and their
    events or pages."""
    os.nice(nice)
    group = [Follower(api, batch_id, stream) for _ in range(n)]
    for f in group:
        f.start()
    for f in group:
        f.join(timeout=300)
    out.send((sum(sorted(f.ids) == want for f in group), sum(f.pages for f in group)))
    out.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--followers", type=int, default=50)
    ap.add_argument("--probes", type=int, default=5, help="of the followers, those that time the lines")
    ap.add_argument("--slots", type=int, default=128)
    ap.add_argument("--base", type=float, default=0.1)
    ap.add_argument("--nice", type=int, default=19, help="the niceness of the followers that are not probes")
    ap.add_argument("--rounds", type=int, default=2, help="batches with followers (one more without, around them)")
    ap.add_argument("--mode", choices=["stream", "poll"], default="stream",
                    help="stream: server-sent events (stream=true); poll: a long poll (wait=10) per page")
    args = ap.parse_args()
    data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in chat_lines(args.requests))
    want = sorted(f"r{i}" for i in range(args.requests))
    alone: list[float] = []
    followed: list[float] = []
    probes: list[Follower] = []
    exact = pages = 0
    stream = args.mode == "stream"
    with simulator("--slots", str(args.slots), "--base", str(args.base)) as sim, batchgate(sim) as api:
        client = OpenAI(base_url=api, api_key="bench", max_retries=0, timeout=120)
        file_id = client.files.create(file=("follow.jsonl", data), purpose="batch").id
        for i in range(2 * args.rounds + 1):  # alone, followed, alone, ..., alone: the machine's drift shows
            batch_id, t0 = run(client, file_id)
            if i % 2 == 0:
                alone.append(wait(client, batch_id, t0))
                continue
            got, sent = multiprocessing.Pipe(duplex=False)
            rest = multiprocessing.Process(target=follow_in_background, args=(
                api, batch_id, args.followers - args.probes, stream, args.nice, want, sent))
            rest.start()
            group = [Follower(api, batch_id, stream) for _ in range(args.probes)]
            for f in group:
                f.start()
            followed.append(wait(client, batch_id, t0))
            for f in group:
                f.join(timeout=300)
            probes += group
            n_exact, n_pages = got.recv()
            rest.join()
            exact += n_exact + sum(sorted(f.ids) == want for f in group)
            pages += n_pages + sum(f.pages for f in group)
        client.close()

    delays = [d for f in probes for d in f.delays]
    print(f"followers: {args.followers} ({args.probes} probes; the others at nice {args.nice}), {args.mode}; "
          f"engine: {args.slots} slots x {args.base}s = {args.slots / args.base:,.0f} req/s at most; "
          f"{args.requests:,} requests a batch")
    print("alone:    " + ", ".join(f"{args.requests / s:,.0f}" for s in alone) + " req/s")
    print("followed: " + ", ".join(f"{args.requests / s:,.0f}" for s in followed) + " req/s")
    print(f"followers with every custom_id exactly once: {exact}/{args.followers * args.rounds}; "
          f"events or pages per follower: {pages / (args.followers * args.rounds):.0f}")
    print(f"engine answer -> probe, {len(delays):,} lines: p50 {pct(delays, 0.5) * 1000:.0f} ms, "
          f"p99 {pct(delays, 0.99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
    alone_rps = args.requests * len(alone) / sum(alone)
    followed_rps = args.requests * len(followed) / sum(followed)
    print(f"ratio followed/alone throughput: {followed_rps / alone_rps:.3f}")


if __name__ == "__main__":
    main()
