"""The scheduling policy, as a fluid model: who gets an upstream's throughput, when each batch will finish, and
which chunks to claim next.

The policy, per route (one upstream's capacity; batches are mapped to routes by their model):
1. Batches at risk of missing their deadline go first, earliest deadline first (EDF). A batch is at risk when
   its finish at its fair share (rule 2) plus a margin (10% of the time it still needs, plus a second) is after
   its `expires_at`, or when serving the other at-risk batches first would make it so. One that would miss
   even at the head of the line is given up on (it runs at its fair share): serving it would only make the
   batches behind it miss too. A batch stays at risk until it finishes, so it does not flap
   at the border and its estimate (served first, to the end) holds.
2. The rest share the throughput by weighted fair queueing between projects (a project's share is its
   weight over the weights of the projects with work on the route), and a project's share is split equally
   between its batches. When a batch finishes, its share goes to the others (water-filling).

`plan` simulates that forward from `now` with each route's measured throughput (requests/s): the estimated
completion of every batch it can estimate, and the at-risk set. `wants` turns the same rule into a claim
order for a given number of chunks. Pure: no clock, no I/O; the worker's planner feeds it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from batchgate.domain.load import BatchLoad

MARGIN_FRACTION = 0.1  # of the time a batch still needs: how much slower than estimated it may run and still make it
MARGIN_SECONDS = 1.0
_ROUNDS = 32  # rounds for the at-risk set: each adds every batch EDF would make late, or drops one lost batch


@dataclass(frozen=True, slots=True)
class Plan:
    """What the scheduler decided at one instant."""

    finish: dict[str, float]  # estimated completion time (unix seconds) of each batch it could estimate
    at_risk: dict[str, int]  # batches served first, with their deadline (expires_at)
    route: dict[str, str]  # the route of every batch that has one

    def urgent_order(self) -> list[str]:
        """The at-risk batches, earliest deadline first."""
        return sorted(self.at_risk, key=lambda b: (self.at_risk[b], b))


def margin(needed: float) -> float:
    """Slack a batch needs before its deadline when it needs `needed` more seconds."""
    return MARGIN_FRACTION * max(0.0, needed) + MARGIN_SECONDS


def plan(
    loads: Sequence[BatchLoad], throughput: Mapping[str, float], route_of: Callable[[str | None], str | None],
    now: float, was_at_risk: Collection[str] = (),
) -> Plan:
    """Estimate every batch's completion and pick the at-risk set. `throughput` is requests/s per route (a
    route without a positive measurement gets no estimates and no at-risk batches); `was_at_risk` is the last
    plan's set (a batch once at risk stays there until it finishes, or is lost)."""
    routes: dict[str, list[BatchLoad]] = {}
    route: dict[str, str] = {}
    for b in loads:
        r = route_of(b.model)
        if r is not None:
            routes.setdefault(r, []).append(b)
            route[b.batch_id] = r
    finish: dict[str, float] = {}
    at_risk: dict[str, int] = {}
    for r, batches in routes.items():
        capacity = throughput.get(r, 0.0)
        if capacity <= 0:
            continue
        urgent, estimated = _at_risk(batches, capacity, now, set(was_at_risk))
        finish.update(estimated)
        at_risk.update({b.batch_id: b.expires_at for b in batches if b.batch_id in urgent})
    return Plan(finish, at_risk, route)


def _at_risk(
    batches: Sequence[BatchLoad], capacity: float, now: float, was: set[str],
) -> tuple[set[str], dict[str, float]]:
    """The at-risk set of one route, and every batch's finish with it served first."""
    def late(b: BatchLoad, at: float) -> bool:
        return at + margin(at - now) > b.expires_at

    fair = simulate(batches, capacity, now, ())
    urgent = {b.batch_id for b in batches if b.batch_id in was or late(b, fair[b.batch_id])}
    lost: set[str] = set()
    for _ in range(_ROUNDS):
        if not urgent:
            return urgent, fair
        finish = simulate(batches, capacity, now, urgent)
        # At the head of the line and still late: lost. Serving it first would only make the others late too.
        # Only the first such in deadline order: those behind it may be late only because of it.
        hopeless = [b for b in batches if b.batch_id in urgent and finish[b.batch_id] > b.expires_at]
        if hopeless:
            first = min(hopeless, key=lambda b: (b.expires_at, b.seq)).batch_id
            urgent.discard(first)
            lost.add(first)
            continue
        more = {b.batch_id for b in batches
                if b.batch_id not in urgent and b.batch_id not in lost and late(b, finish[b.batch_id])}
        if not more:
            return urgent, finish
        urgent |= more
    return urgent, simulate(batches, capacity, now, urgent) if urgent else fair


def simulate(
    batches: Sequence[BatchLoad], capacity: float, now: float, urgent: Collection[str],
) -> dict[str, float]:
    """Finish time of each batch of one route serving `capacity` requests/s: the `urgent` batches one after the
    other, earliest deadline first, then the rest at their weighted fair share, redistributed as batches finish."""
    finish: dict[str, float] = {}
    t = now
    for b in sorted((b for b in batches if b.batch_id in urgent), key=lambda b: (b.expires_at, b.seq)):
        t += _remaining(b) / capacity
        finish[b.batch_id] = t
    finish.update(_fair([b for b in batches if b.batch_id not in urgent], capacity, t))
    return finish


def _remaining(b: BatchLoad) -> int:
    return max(0, b.total - b.done)


class _Project:
    """A project's batches in the fair phase: all of them drain at one rate, so only the drained amount moves."""

    __slots__ = ("batches", "drained", "next", "weight")

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.batches: list[tuple[int, str]] = []  # (remaining, batch_id), smallest first once sorted
        self.drained = 0.0  # requests each of its unfinished batches has done since the phase began
        self.next = 0  # index of its first unfinished batch

    def left(self) -> int:
        return len(self.batches) - self.next


def _fair(batches: Iterable[BatchLoad], capacity: float, start: float) -> dict[str, float]:
    projects: dict[str, _Project] = {}
    for b in batches:
        p = projects.setdefault(b.project, _Project(max(b.weight, 1e-9)))
        p.batches.append((_remaining(b), b.batch_id))
    for p in projects.values():
        p.batches.sort()
    finish: dict[str, float] = {}
    active = list(projects.values())
    t = start
    while True:
        for p in active:
            while p.next < len(p.batches) and p.batches[p.next][0] - p.drained <= 1e-9 * (1 + p.drained):
                finish[p.batches[p.next][1]] = t
                p.next += 1
        active = [p for p in active if p.left()]
        if not active:
            return finish
        total_weight = sum(p.weight for p in active)
        rates = [capacity * p.weight / total_weight / p.left() for p in active]
        dt = min((p.batches[p.next][0] - p.drained) / rate for p, rate in zip(active, rates, strict=True))
        t += dt
        for p, rate in zip(active, rates, strict=True):
            p.drained += rate * dt


def wants(
    loads: Sequence[BatchLoad], at_risk: Mapping[str, int], k: int, turns: Mapping[str, float] | None = None,
) -> list[tuple[str, int]]:
    """Up to `k` chunks to claim, as (batch_id, n) runs in claim order (a batch may come back later in the list),
    among batches with open chunks: at-risk
    batches earliest deadline first (as many of their chunks as they have), then one chunk at a time to the
    project with the fewest leased chunks per weight (at-risk batches not counted), within it to the batch with
    the fewest leased chunks. Ties go to the project, then the batch, whose turn came longest ago (`turns`: when
    each project and batch id last got a chunk, in any increasing unit; never: first), then to the older batch.
    A worker holds few chunks at a time, so most claims are ties: taking turns makes the shares come out over a
    few claims, where creation order would serve the oldest project again and again. Call it with one route's
    batches."""
    turns = turns or {}
    out: list[tuple[str, int]] = []
    open_ = [b for b in loads if b.open_chunks > 0]
    for b in sorted((b for b in open_ if b.batch_id in at_risk), key=lambda b: (at_risk[b.batch_id], b.seq)):
        if k <= 0:
            return out
        n = min(k, b.open_chunks)
        out.append((b.batch_id, n))
        k -= n
    leased: dict[str, float] = {}
    weight: dict[str, float] = {}
    # per project, a heap of (leased, turn, seq, batch_id, open)
    per_project: dict[str, list[tuple[int, float, int, str, int]]] = {}
    for b in loads:
        if b.batch_id in at_risk:
            continue
        leased[b.project] = leased.get(b.project, 0.0) + b.leased_chunks
        weight[b.project] = max(b.weight, 1e-9)
        if b.open_chunks > 0:
            per_project.setdefault(b.project, []).append(
                (b.leased_chunks, turns.get(b.batch_id, -math.inf), b.seq, b.batch_id, b.open_chunks))
    heap: list[tuple[float, float, int, str]] = []  # (leased per weight, turn, seq of its next batch, project)
    for project, batches in per_project.items():
        heapq.heapify(batches)
        heap.append((leased[project] / weight[project], turns.get(project, -math.inf), batches[0][2], project))
    heapq.heapify(heap)
    now = max(turns.values(), default=0.0)  # the turns given in this call come after all earlier ones
    while k > 0 and heap:
        _, _, _, project = heapq.heappop(heap)
        now += 1
        batches = per_project[project]
        n, _, seq, batch_id, left = heapq.heappop(batches)
        if out and out[-1][0] == batch_id:
            out[-1] = (batch_id, out[-1][1] + 1)
        else:
            out.append((batch_id, 1))
        k -= 1
        if left > 1:
            heapq.heappush(batches, (n + 1, now, seq, batch_id, left - 1))
        leased[project] += 1
        if batches:
            heapq.heappush(heap, (leased[project] / weight[project], now, batches[0][2], project))
    return out
