"""A window that fills without flooding (issue 13, rule 5): batchgate with default settings (no concurrency
configured) against the engine simulator with 32, 256 and 1,024 slots, in queue mode and in 429 mode.

Each case runs one batch. After a warm-up (the window's startup and the drain of its overshoot) the simulator's
counters are reset; at the end of the measured stretch its time-weighted figures are read:
- utilization: busy slot-seconds / (slots x seconds) over the stretch (the steady state's saturation);
- queued inside the engine: time-averaged and p95 of its queue length, as fractions of its slots;
- the window (batchgate_upstream_concurrency_window from /metrics) at the end, and its range while measured.
Whole-run saturation (ramp-up and tail included, as bench/saturation.py used to report) is shown too.
Targets: utilization >= 0.97 (queue) / >= 0.95 (429); queue mean and p95 <= 0.25 of the slots; no failed
requests. A last case kills the server (kill -9) mid-batch in queue mode and counts the requests the simulator
served twice, against the window read just before the kill: at most twice the window.

Run: .venv/bin/python bench/window.py [--quick] [--modes queue,reject] [--slots 32,256] [--no-kill]
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from common import batchgate, chat_lines, free_port, http_json, run_batch, simulator, wait_http
from openai import OpenAI

# slots, base service seconds, requests, warm-up seconds, measured seconds
CASES = [
    (32, 0.25, 3_000, 6.0, 10.0),
    (256, 0.5, 12_000, 8.0, 12.0),
    (1024, 2.0, 29_000, 34.0, 16.0),
]
QUEUE_MAX = 0.25  # of the slots, mean and p95
TARGET = {"queue": 0.97, "reject": 0.95}


def window_of(api: str) -> float | None:
    """The default route's window, from batchgate's /metrics (None when not there yet)."""
    try:
        with urllib.request.urlopen(api.removesuffix("/v1") + "/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("batchgate_upstream_concurrency_window{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def steady(mode: str, slots: int, base: float, n: int, warm: float, measure: float) -> dict[str, Any]:
    with simulator("--slots", str(slots), "--base", str(base), "--mode", mode, "--retry-after", "1") as sim, \
            batchgate(sim) as api:
        seen: dict[str, Any] = {"windows": []}
        last_sample = [0.0]

        def poll(elapsed: float, b: Any) -> None:
            if "reset_at" not in seen and elapsed >= warm:
                http_json(sim + "/_reset", {})
                seen["reset_at"] = elapsed
            elif "reset_at" in seen and "stats" not in seen:
                if elapsed - last_sample[0] >= 1.0:
                    last_sample[0] = elapsed
                    w = window_of(api)
                    if w is not None:
                        seen["windows"].append(w)
                if elapsed >= warm + measure:
                    seen["stats"] = http_json(sim + "/_stats")
                    seen["window"] = window_of(api)
                    seen["done_at_read"] = b.request_counts.completed + b.request_counts.failed

        elapsed, b = run_batch(api, chat_lines(n), on_poll=poll)
        whole = http_json(sim + "/_stats")
    st = seen.get("stats")
    c = b.request_counts
    row: dict[str, Any] = {"mode": mode, "slots": slots, "requests": n, "seconds": round(elapsed, 1),
                           "failed": c.failed, "status": b.status,
                           "saturation_whole_run": round(whole["saturation"], 3),
                           "rejected_429": whole["rejected"]}
    if st is None or seen.get("done_at_read", n) >= n:
        row["problem"] = "the batch ended before the measured stretch did: more requests needed"
        return row
    windows = seen["windows"] or [math.nan]
    row.update({
        "measured_seconds": round(st["seconds"], 1), "utilization": round(st["utilization"], 3),
        "queue_mean_of_slots": round(st["queue_mean"] / slots, 3),
        "queue_p95_of_slots": round(st["queue_p95"] / slots, 3),
        "queue_max": st["queue_max"], "window_end": seen["window"],
        "window_of_slots": round((seen["window"] or math.nan) / slots, 2),
        "window_range": [min(windows), max(windows)],
    })
    return row


def check(row: dict[str, Any]) -> list[str]:
    if "problem" in row:
        return [row["problem"]]
    out = []
    if row["utilization"] < TARGET[row["mode"]]:
        out.append(f"utilization {row['utilization']} < {TARGET[row['mode']]}")
    if row["queue_mean_of_slots"] > QUEUE_MAX or row["queue_p95_of_slots"] > QUEUE_MAX:
        out.append(f"queue mean/p95 {row['queue_mean_of_slots']}/{row['queue_p95_of_slots']} > {QUEUE_MAX} of slots")
    if row["failed"]:
        out.append(f"{row['failed']} failed requests")
    return out


def killed(slots: int, base: float, n: int) -> dict[str, Any]:
    """kill -9 the server at ~40% of a batch (queue mode), restart it on the same data directory; count the
    requests the simulator served twice against the window just before the kill."""
    with simulator("--slots", str(slots), "--base", str(base), "--mode", "queue") as sim, \
            tempfile.TemporaryDirectory(prefix="bg-window-") as tmp:
        port = free_port()
        cmd = [sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", tmp,
               "--upstream", sim + "/v1"]
        env = {**os.environ, "BATCHGATE_LOG_LEVEL": "warning"}
        api = f"http://127.0.0.1:{port}/v1"

        def start() -> subprocess.Popen[bytes]:
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            wait_http(f"http://127.0.0.1:{port}/health")
            return p

        proc = start()
        try:
            client = OpenAI(base_url=api, api_key="bench", max_retries=2)
            data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in chat_lines(n))
            f = client.files.create(file=("window.jsonl", data), purpose="batch")
            t0 = time.monotonic()
            b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
            while (b.request_counts.completed if b.request_counts else 0) < 0.4 * n:
                time.sleep(0.1)
                b = client.batches.retrieve(b.id)
            window = window_of(api)
            inflight_before = http_json(sim + "/_stats")["served"]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            client.close()
            proc = start()
            client = OpenAI(base_url=api, api_key="bench", max_retries=2)
            while b.status not in ("completed", "failed", "cancelled", "expired"):
                time.sleep(0.2)
                b = client.batches.retrieve(b.id)
            elapsed = time.monotonic() - t0
            client.close()
        finally:
            proc.terminate()
            proc.wait(15)
        st = http_json(sim + "/_stats")
    resent = st["repeated"]
    return {"case": "kill -9 at 40%", "slots": slots, "requests": n, "seconds": round(elapsed, 1),
            "status": b.status, "served_before_kill": inflight_before, "window_at_kill": window,
            "resent": resent, "resent_of_window": round(resent / window, 2) if window else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 and 256 slots only, and the kill case")
    ap.add_argument("--modes", default="queue,reject")
    ap.add_argument("--slots", default="", help="only these slot counts, e.g. 1024 (default: all cases)")
    ap.add_argument("--no-kill", action="store_true", help="skip the kill -9 case")
    a = ap.parse_args()
    only = set(filter(None, a.slots.split(",")))
    rows, problems = [], []
    for mode in a.modes.split(","):
        for slots, base, n, warm, measure in CASES:
            if (only and str(slots) not in only) or (a.quick and slots > 256):
                continue
            row = steady(mode, slots, base, n, warm, measure)
            rows.append(row)
            print(json.dumps(row), flush=True)
            problems += [f"{mode} {slots}: {p}" for p in check(row)]
    if not a.no_kill:
        k = killed(256, 0.5, 10_000)
        print(json.dumps(k), flush=True)
        if k["status"] != "completed":
            problems.append(f"kill case: batch {k['status']}")
        if k["window_at_kill"] is None or k["resent"] > 2 * k["window_at_kill"]:
            problems.append(f"kill case: {k['resent']} re-sent > 2 x window {k['window_at_kill']}")
    print("\n| mode | slots | utilization (steady) | queued in engine, mean / p95 (of slots) | window at end (x slots) "
          "| window range | failed | 429s | whole-run saturation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "problem" in r:
            print(f"| {r['mode']} | {r['slots']} | {r['problem']} | | | | {r['failed']} | {r['rejected_429']} | |")
            continue
        print(f"| {r['mode']} | {r['slots']} | {r['utilization']:.3f} | {r['queue_mean_of_slots']:.3f} / "
              f"{r['queue_p95_of_slots']:.3f} | {r['window_end']:.0f} ({r['window_of_slots']}) | "
              f"{r['window_range'][0]:.0f}-{r['window_range'][1]:.0f} | {r['failed']} | {r['rejected_429']} | "
              f"{r['saturation_whole_run']:.3f} |")
    if problems:
        print("\nMISSED: " + "; ".join(problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
