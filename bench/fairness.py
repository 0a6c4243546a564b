"""Fair share on a shared engine (issue 13, rules 1 and 2): head of line and weighted shares, against the engine
simulator (queue mode, 64 slots of 0.1 s: 640 requests/s), each project with its own API key.

- Head of line: a 10-line batch runs alone on the idle engine (its own service time, batchgate's latency
  included), then three 20,000-line batches of three other projects are created; once they fill the engine the
  same 10-line batch is created again by a fourth project. Target: behind <= 3 s + alone. (The big batches are
  cancelled once it is done.)
- Shares: two projects submit 20,000 lines each, with weights 1:1, then (two new projects) 3:1. Each project's
  throughput is read from request_counts, polled every 0.25 s, over the interval where both batches run:
  from the first poll where both are in_progress plus a settling time, to the last poll before either has
  95% of its requests done. Target: the first project's share 50% (75%) +- 5 points; saturation over the same
  interval (the simulator's busy slot-seconds / (slots x seconds)) >= 0.95.

A server without weights (before issue 13) runs every case in creation order; the output says so, and 3:1 is
then measured at 1:1.

Run: .venv/bin/python bench/fairness.py [--quick] [--only head,shares] [--workers N]
(--workers N: the API in `serve --no-worker` and N `batchgate worker` processes on a fresh PostgreSQL database,
so the rules are measured across processes.)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from tenants import TERMINAL, Layout, Tenants, done, shared_server

SLOTS = 64
BASE = 0.1


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def order_note(t: Tenants) -> str:
    """What ordered the run: weights, and whether a scheduler wrote estimates (without one: creation order)."""
    weights = ("project weights through POST /v1/admin/projects/{project}" if t.weights else
               "no project weights on this server")
    if t.estimates_seen:
        order = "scheduled: batches carried estimated_completion_at"
    elif t.weights:  # weights came with the scheduler; a run over before the first capacity reading shows no estimate
        order = "no estimated_completion_at seen yet (the first comes about 2 s after a route's first answers)"
    else:
        order = "no batch carried an estimated_completion_at: creation order"
    return f"{weights}; {order}"


def time_small(t: Tenants, project: str, lines: int, give_up: float) -> tuple[float, str]:
    """Create a `lines`-line batch for `project`; seconds from create to completed (client clock, 50 ms polls)."""
    client = t.client(project)
    batch_id = t.submit(project, lines, window="1h")
    t0 = time.monotonic()  # from create's answer: the upload is not the scheduler's business
    while True:
        b = client.batches.retrieve(batch_id)
        if b.status in TERMINAL:
            return time.monotonic() - t0, b.status
        if time.monotonic() - t0 > give_up:
            return time.monotonic() - t0, b.status
        time.sleep(0.05)


def head_of_line(big: int, small: int, layout: Layout) -> bool:
    with shared_server(SLOTS, BASE, layout=layout) as t:
        alone, _ = time_small(t, "hol-alone", small, give_up=60)
        bigs = [t.submit(f"hol-big{i}", big) for i in range(3)]
        t.wait_full(bigs, SLOTS)
        seen = t.batches()
        left_before = sum(seen[i]["request_counts"]["total"] - done(seen[i]) for i in bigs)
        behind, status = time_small(t, "hol-small", small, give_up=3 * big / (SLOTS / BASE) + 120)
        seen = t.batches()
        left_after = sum(seen[i]["request_counts"]["total"] - done(seen[i]) for i in bigs)
        t.cancel(bigs)
        note = order_note(t)
    target = 3 + alone
    ok = status == "completed" and behind <= target
    print(f"head of line ({note}):")
    print(f"  {small}-line batch alone on the idle engine: {alone:.2f} s")
    print(f"  the same, created behind three {big:,}-line batches of three other projects once they filled the "
          f"engine ({left_before:,} of their requests left): {behind:.2f} s ({status}; {left_after:,} left then)")
    print(f"  target <= 3 s + alone = {target:.2f} s: {verdict(ok)}", flush=True)
    return ok


@dataclass
class Sample:
    at: float
    done_a: int
    done_b: int
    both_running: bool
    busy: float


def share_run(t: Tenants, tag: str, weights: tuple[float, float], lines: int, settle: float) -> bool:
    pa, pb = f"{tag}-a", f"{tag}-b"
    applied = t.set_weight(pa, weights[0]) and t.set_weight(pb, weights[1])
    t.client(pa), t.client(pb)  # keys made before the clock starts
    ia, ib = t.submit(pa, lines), t.submit(pb, lines)
    samples: list[Sample] = []
    deadline = time.monotonic() + 2 * lines * 2 / (SLOTS / BASE) + 120
    while time.monotonic() < deadline:
        seen = t.batches()
        a, b = seen[ia], seen[ib]
        busy = float(t.stats()["busy_slot_seconds"])
        samples.append(Sample(time.monotonic(), done(a), done(b),
                              a["status"] == b["status"] == "in_progress", busy))
        if max(done(a), done(b)) >= 0.95 * lines or a["status"] in TERMINAL or b["status"] in TERMINAL:
            break
        time.sleep(0.25)
    t.cancel([ia, ib])
    start = next((s.at for s in samples if s.both_running), None)
    window = [s for s in samples if start is not None and s.at >= start + settle and s.both_running]
    want = weights[0] / sum(weights) if applied else 0.5
    label = f"{weights[0]:g}:{weights[1]:g}"
    if not applied:
        label += " (no weights: both at 1)" if weights[0] == weights[1] else " asked, run at 1:1 (no weights)"
    if len(window) < 2:
        print(f"shares {label}: both batches never ran together for {settle:.0f} s "
              f"(last counts {samples[-1].done_a:,} / {samples[-1].done_b:,}): FAIL", flush=True)
        return False
    s0, s1 = window[0], window[-1]
    da, db, dt = s1.done_a - s0.done_a, s1.done_b - s0.done_b, s1.at - s0.at
    share = da / (da + db) if da + db else 0.0
    saturation = (s1.busy - s0.busy) / (SLOTS * dt)
    ok_share = abs(share - want) <= 0.05
    ok_sat = saturation >= 0.95
    print(f"shares {label}: over {dt:.1f} s with both running, project a {da:,} requests ({share:.1%}), "
          f"project b {db:,} ({1 - share:.1%}); {(da + db) / dt:.0f} req/s")
    print(f"  target a = {want:.0%} +- 5 points: {verdict(ok_share)}; saturation {saturation:.3f} "
          f"(>= 0.95): {verdict(ok_sat)}", flush=True)
    return ok_share and ok_sat


def shares(lines: int, settle: float, layout: Layout) -> bool:
    with shared_server(SLOTS, BASE, layout=layout) as t:
        print(f"shares, {lines:,} lines per project:", flush=True)
        one = share_run(t, "even", (1, 1), lines, settle)
        three = share_run(t, "heavy", (3, 1), lines, settle)
        print(f"  ({order_note(t)})", flush=True)
    return one and three


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3,000-line big batches, 5,000-line shares (a smoke run)")
    ap.add_argument("--only", default="head,shares", help="comma-separated: head, shares")
    ap.add_argument("--big", type=int, default=20_000, help="lines in each of the three big batches")
    ap.add_argument("--lines", type=int, default=20_000, help="lines per project in the shares runs")
    ap.add_argument("--workers", type=int, default=0,
                    help="run `serve --no-worker` and this many `batchgate worker` processes on a fresh PostgreSQL "
                    "database (default 0: one `serve` on SQLite)")
    ap.add_argument("--pg-admin", default=Layout.pg_admin, help="PostgreSQL URL to create that database from")
    args = ap.parse_args()
    layout = Layout(args.workers, args.pg_admin)
    big, lines, settle = (3_000, 5_000, 2.0) if args.quick else (args.big, args.lines, 3.0)
    only = set(args.only.split(","))
    print(f"engine simulator: {SLOTS} slots x {BASE} s (queue mode), {SLOTS / BASE:.0f} requests/s; batchgate: "
          f"{layout}", flush=True)
    ok = True
    if "head" in only:
        ok = head_of_line(big, 10, layout) and ok
    if "shares" in only:
        ok = shares(lines, settle, layout) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
