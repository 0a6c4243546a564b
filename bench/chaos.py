"""Crash anywhere: run a batch against the fake upstream and `kill -9` the server at five random moments,
restarting it each time on the same data directory.

Checks, after the batch ends: it completed; every custom_id appears exactly once across the output and error
files; every line of both files parses and ends with a newline, and none is repeated. It reports how many
requests the upstream received more than once, per kill, against the in-flight window
(BATCHGATE_UPSTREAM_CONCURRENCY=16): a kill resends the requests in flight plus the answers not yet committed.

Run: .venv/bin/python bench/chaos.py            (20,000 requests)
     .venv/bin/python bench/chaos.py --quick    (2,000 requests; what tests/system/faults/test_chaos.py runs)
Prints one JSON object; exits 1 when an invariant is broken."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

from harness import BatchgateServer, FakeUpstream  # noqa: E402
from helpers import chat_line, jsonl, multipart, raw  # noqa: E402

WINDOW = 16
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def get(server: BatchgateServer, path: str) -> Any:
    response = raw(server.base_url, "GET", path, timeout=30)
    assert response.status == 200, (path, response.status, response.body[:300])
    return response


def progress(server: BatchgateServer, batch_id: str) -> tuple[str, int]:
    b = get(server, f"/batches/{batch_id}").json()
    counts = b["request_counts"]
    return b["status"], counts["completed"] + counts["failed"]


def upload(server: BatchgateServer, n: int) -> str:
    body, ctype = multipart([("purpose", "batch"), ("file", ("chaos.jsonl", jsonl([chat_line(f"c{i}")
                                                                                     for i in range(n)])))])
    response = raw(server.base_url, "POST", "/files", body, {"Content-Type": ctype}, timeout=120)
    assert response.status == 200, response.body[:300]
    file_id = response.json()["id"]
    response = raw(server.base_url, "POST", "/batches", json.dumps(
        {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
        {"Content-Type": "application/json"}, timeout=30)
    assert response.status == 200, response.body[:300]
    return str(response.json()["id"])


def check_file(content: bytes, problems: list[str], name: str) -> list[str]:
    if content and not content.endswith(b"\n"):
        problems.append(f"{name}: does not end with a newline")
    lines = content.split(b"\n")[:-1] if content else []
    dup_lines = [ln for ln, c in Counter(lines).items() if c > 1]
    if dup_lines:
        problems.append(f"{name}: {len(dup_lines)} lines repeated")
    ids = []
    for ln in lines:
        try:
            ids.append(json.loads(ln)["custom_id"])
        except (ValueError, KeyError):
            problems.append(f"{name}: unparseable or truncated line {ln[:80]!r}")
    return ids


def chaos(n: int, kills: int, seed: int, latency: float, root: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    fake = FakeUpstream(root / "fake.log")
    fake.control(latency=latency)
    server = BatchgateServer(root / "data", upstream=fake.base_url, env={
        "BATCHGATE_UPSTREAM_CONCURRENCY": str(WINDOW), "BATCHGATE_LOG_LEVEL": "warning",
        "BATCHGATE_MAX_ATTEMPTS": "6", "BATCHGATE_REQUEST_TIMEOUT": "30"})
    moments: list[dict[str, Any]] = []
    try:
        server.start()
        start = time.monotonic()
        batch_id = upload(server, n)
        # Five moments, as fractions of the requests done; one of them may land in validation (0.0).
        targets = sorted([0.0 if rng.random() < 0.3 else rng.uniform(0.02, 0.98)]
                         + [rng.uniform(0.02, 0.98) for _ in range(kills - 1)])
        for target in targets:
            deadline = time.monotonic() + 300
            status, done = progress(server, batch_id)
            while done < target * n and status not in TERMINAL and time.monotonic() < deadline:
                time.sleep(0.01)
                status, done = progress(server, batch_id)
            time.sleep(rng.uniform(0, 0.05))
            before = fake.stats()["total"]
            server.kill()
            moments.append({"target": round(target, 3), "status": status, "done": done, "sent_so_far": before,
                            "at": time.monotonic()})
            server.start()
        deadline = time.monotonic() + 600
        status, done = progress(server, batch_id)
        while status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.05)
            status, done = progress(server, batch_id)
        elapsed = time.monotonic() - start
        b = get(server, f"/batches/{batch_id}").json()
        problems: list[str] = []
        if b["status"] != "completed":
            problems.append(f"batch ended {b['status']}")
        seen: list[str] = []
        for key in ("output_file_id", "error_file_id"):
            if b[key]:
                seen += check_file(get(server, f"/files/{b[key]}/content").body, problems, key)
        counts = Counter(seen)
        missing = n - len(set(seen) & {f"c{i}" for i in range(n)})
        twice = sum(1 for c in counts.values() if c > 1)
        if missing or twice or len(counts) != n:
            problems.append(f"custom_ids: {missing} missing, {twice} more than once, {len(counts)} distinct")
        stats = fake.stats()
        resent = {k: c - 1 for k, c in stats["by_key"].items() if c > 1}
        dup_sends = sum(resent.values())
        # Attribute each repeat to the kill before it (the fake's clock is the same CLOCK_MONOTONIC).
        kill_times = [m.pop("at") for m in moments]
        for m in moments:
            m["resent_after"] = 0
        for k in resent:
            for t in stats["times_by_key"][k][1:]:
                before_t = [i for i, kt in enumerate(kill_times) if kt <= t]
                if before_t:
                    moments[before_t[-1]]["resent_after"] += 1
        # A request holds its slot at the gate until its result is committed, so a kill can lose at most the
        # window: at most WINDOW requests are sent again after each kill.
        over = [m["resent_after"] for m in moments if m["resent_after"] > WINDOW]
        if over:
            problems.append(f"kills that resent more than the window {WINDOW}: {over}")
        if dup_sends > WINDOW * kills:
            problems.append(f"{dup_sends} duplicate sends > window {WINDOW} x {kills} kills")
        return {
            "requests": n, "kills": kills, "seed": seed, "window": WINDOW, "seconds": round(elapsed, 1),
            "status": b["status"], "request_counts": b["request_counts"], "upstream_requests": stats["total"],
            "duplicate_sends": dup_sends, "requests_sent_twice_or_more": len(resent),
            "duplicate_sends_per_kill": round(dup_sends / kills, 1), "window_per_kill_bound": WINDOW * kills,
            "kills_over_window": over,
            "error_lines": b["request_counts"]["failed"], "upstream_max_in_flight": stats["max_in_flight"],
            "moments": moments, "problems": problems,
        }
    finally:
        server.stop()
        fake.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2,000 requests instead of 20,000")
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--latency", type=float, default=0.02, help="fake upstream seconds per request")
    a = p.parse_args()
    n = a.requests or (2000 if a.quick else 20000)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="bg-chaos-") as tmp:
        result = chaos(n, a.kills, seed, a.latency, Path(tmp))
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
