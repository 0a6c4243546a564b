"""The worker's planner: the scheduling policy (domain/schedule.py) applied to what the store says is running.

At most every second (at once when woken by a new batch) it reads `schedule_snapshot`, measures each route's
capacity from the growth of `done` between snapshots (domain/capacity.py), and makes a plan: every route's gate is
told each batch's project, weight and (when at risk) deadline; the runner asks it which chunks to claim
(`wants`); the estimates go to the store, and so does since when each batch has been at risk (worker/at_risk.py,
which also logs each batch that enters or leaves the at-risk set). Every worker plans from the same shared store,
so on PostgreSQL the claim order of all workers follows one rule, and each worker's gates apply it to what that
worker sends.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from batchgate import clock
from batchgate.domain.capacity import Capacity
from batchgate.domain.load import BatchLoad
from batchgate.domain.schedule import Plan, plan, wants
from batchgate.domain.work import ChunkClaim
from batchgate.upstream.gate import FlowSpec
from batchgate.upstream.router import Router
from batchgate.worker.at_risk import AtRisk, yields_to_others

REFRESH_SECONDS = 1.0
ESTIMATE_SLACK_SECONDS = 1  # an estimate that moved by more than this is written at once
ESTIMATE_REWRITE_SECONDS = 5.0  # and all of them this often
STARTING_SECONDS = 0.25  # a chunk claimed this recently may not have put its requests at the gate yet
_TIES = 1024  # at-risk batches with one deadline that the gate tells apart
NO_ROUTE = ""  # the route of batches whose model no route serves: they run (and fail at once) like any other


class ScheduleStore(Protocol):
    """What the planner needs of the store."""

    async def schedule_snapshot(self, now: float) -> list[BatchLoad]: ...

    async def set_estimates(self, estimates: Sequence[tuple[str, int | None]]) -> None: ...

    async def set_at_risk(self, marks: Sequence[tuple[str, int | None]]) -> None: ...


class Planner:
    def __init__(
        self, store: ScheduleStore, router: Router, chunk_size: int, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._monotonic = monotonic
        self._claimed_at: dict[str, float] = {}  # when this worker last claimed a chunk of each batch (monotonic)
        self._router = router
        self._chunk_size = max(1, chunk_size)
        # a batch with fewer requests than this waiting at its gate gets its next chunk now, before it runs out
        self._low_water = max(1, self._chunk_size // 2)
        for route in router.routes:
            route.gate.low_water = self._low_water
        self._loads: dict[str, BatchLoad] = {}
        self._plan = Plan({}, {}, {})
        self._capacity: dict[str, Capacity] = {}
        self._route_done: dict[str, float] = {}  # requests done per route since it last had work
        self._refreshed = -math.inf
        self._poked = True
        self._turns: dict[str, float] = {}  # when each project and batch last got a chunk here (claim count)
        self._claims = 0
        self._written: dict[str, int] = {}
        self._rewritten = -math.inf
        self._at_risk = AtRisk()
        self._yielding: set[str] = set()  # routes whose windows yielded to other traffic before this plan

    def poke(self) -> None:
        """Something changed (a batch was created or started): plan again at the next refresh, not a second later."""
        self._poked = True

    def route_of(self, model: str | None) -> str | None:
        if model is None:
            return NO_ROUTE
        route = self._router.resolve(model)
        return route.name if route is not None else NO_ROUTE

    async def refresh(self, now: float | None = None) -> bool:
        """Plan again if a second has passed or it was poked; whether it did."""
        now = clock.now_f() if now is None else now
        if not self._poked and now - self._refreshed < REFRESH_SECONDS:
            return False
        self._poked = False
        self._refreshed = now
        loads = await self._store.schedule_snapshot(now)
        self._measure(now, loads)
        throughput = {r: rate for r, m in self._capacity.items() if (rate := m.rate()) is not None}
        self._plan = plan(loads, throughput, self.route_of, now, self._plan.at_risk)
        self._loads = {b.batch_id: b for b in loads}
        self._push_flows(loads)
        await self._write_estimates(now)
        return True

    def _measure(self, now: float, loads: Sequence[BatchLoad]) -> None:
        """Each route's done count: the growth of `done` of its batches since the last snapshot. A batch that left
        in_progress since then finished, or expired, or was cancelled: the snapshot cannot tell its last requests
        from ones it never ran, so that interval is no sample of its route's throughput."""
        before = self._loads
        present = {b.batch_id for b in loads}
        busy: set[str] = set()
        left: set[str] = set()
        for b in loads:
            route = self.route_of(b.model)
            assert route is not None
            busy.add(route)
            old = before.get(b.batch_id)
            if old is not None and b.done > old.done:
                self._route_done[route] = self._route_done.get(route, 0.0) + b.done - old.done
        for batch_id, old in before.items():
            if batch_id not in present:
                route = self.route_of(old.model)
                assert route is not None
                left.add(route)
                self._turns.pop(batch_id, None)
                self._claimed_at.pop(batch_id, None)
        for route in list(self._capacity):
            if route not in busy:  # idle: the next measurement starts afresh
                del self._capacity[route]
                self._route_done.pop(route, None)
        for route in busy:
            self._capacity.setdefault(route, Capacity()).add(
                now, self._route_done.get(route, 0.0), exact=route not in left)

    def _push_flows(self, loads: Sequence[BatchLoad]) -> None:
        # read before set_flows: while a batch is at risk the windows stop yielding
        self._yielding = {r.name for r in self._router.routes if yields_to_others(r)}
        flows: dict[str, dict[str, FlowSpec]] = {r.name: {} for r in self._router.routes}
        urgent = _urgent_keys(loads, self._plan.at_risk)
        for b in loads:
            route = self._plan.route.get(b.batch_id)
            if route in flows:
                flows[route][b.batch_id] = FlowSpec(b.project, b.weight, urgent.get(b.batch_id))
        for r in self._router.routes:
            r.gate.set_flows(flows[r.name])

    def estimates(self) -> dict[str, int]:
        """Estimated completion (unix seconds) of every batch whose route has a measured capacity: the whole second
        its last request is expected in, as `completed_at` counts whole seconds."""
        return {batch_id: math.floor(at) for batch_id, at in self._plan.finish.items()}

    async def _write_estimates(self, now: float) -> None:
        current: dict[str, int | None] = dict(self.estimates())
        for batch_id in self._written.keys() - current.keys():
            if batch_id in self._loads:
                current[batch_id] = None  # still running, but no rate any more (nothing done for a while)
        rewrite = now - self._rewritten >= ESTIMATE_REWRITE_SECONDS
        if rewrite:
            changed = current
            self._rewritten = now
        else:
            changed = {b: at for b, at in current.items() if _moved(self._written.get(b), at)}
        if changed:
            await self._store.set_estimates(sorted(changed.items(), key=lambda item: item[0]))
        self._at_risk.update(now, self._plan, self._loads, self._yielding.__contains__)
        if marks := self._at_risk.marks(everything=rewrite):
            await self._store.set_at_risk(marks)
        written = {**self._written, **changed}
        self._written = {b: at for b, at in written.items() if at is not None and b in current}

    def wants(self, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` chunks to claim, (batch_id, n) in claim order, chosen by the policy. Per route: one chunk
        for each batch with less than half a chunk waiting at the gate (fair queueing can only share between
        requests that are there, so each batch's next chunk is claimed before it runs out; a chunk claimed in the
        last STARTING_SECONDS counts as on its way), and as many more as the gate is short of requests. Routes
        interleaved."""
        if limit <= 0:
            return []
        routes = {r.name: r for r in self._router.routes}
        by_route: dict[str, list[BatchLoad]] = {}
        for b in self._loads.values():
            if b.open_chunks > 0:
                by_route.setdefault(self._plan.route.get(b.batch_id, NO_ROUTE), []).append(b)
        now = self._monotonic()
        lists: list[list[str]] = []
        for name, batches in by_route.items():
            route = routes.get(name)
            if route is None:  # no route serves them: they fail at once, so take them as they come
                lists.append(self._choose(batches, limit))
                continue
            starving = [dataclasses.replace(b, open_chunks=1) for b in batches
                        if route.gate.waiting_for(b.batch_id) < self._low_water
                        and now - self._claimed_at.get(b.batch_id, -math.inf) >= STARTING_SECONDS]
            chosen = self._choose(starving, len(starving))
            need = -(-max(0, route.shortfall()) // self._chunk_size) - len(chosen)
            if need > 0:
                taken = collections.Counter(chosen)
                rest = [dataclasses.replace(b, leased_chunks=b.leased_chunks + taken.get(b.batch_id, 0),
                                            open_chunks=b.open_chunks - taken.get(b.batch_id, 0)) for b in batches]
                chosen += self._choose(rest, need)
            lists.append(chosen)
        out: dict[str, int] = {}
        for batch_id in itertools.islice(_interleave(lists), limit):
            out[batch_id] = out.get(batch_id, 0) + 1
        return list(out.items())

    def _choose(self, batches: Sequence[BatchLoad], k: int) -> list[str]:
        return [b for b, n in wants(batches, self._plan.at_risk, k, self._turns) for _ in range(n)]

    def claimed(self, claims: Sequence[ChunkClaim]) -> None:
        """Count chunks just claimed as leased until the next snapshot says so, and as the turn of their batch and
        project."""
        for c in claims:
            b = self._loads.get(c.batch_id)
            if b is not None:
                self._claims += 1
                self._turns[b.project] = self._turns[b.batch_id] = self._claims
                self._claimed_at[b.batch_id] = self._monotonic()
                self._loads[c.batch_id] = dataclasses.replace(
                    b, leased_chunks=b.leased_chunks + 1, open_chunks=max(0, b.open_chunks - 1))

    def released(self, batch_id: str) -> None:
        """A chunk of this worker ended (done, failed or released)."""
        b = self._loads.get(batch_id)
        if b is not None:
            self._loads[batch_id] = dataclasses.replace(b, leased_chunks=max(0, b.leased_chunks - 1))


def _urgent_keys(loads: Sequence[BatchLoad], at_risk: Mapping[str, int]) -> dict[str, float]:
    """The gate's order for the at-risk batches: the deadline, and among equal deadlines the plan's order (creation
    order) as a fraction of a second. The gate breaks a tie by when a flow last joined its queue, which changes
    each time a batch runs dry there between chunks: then it served the later batch first while the estimates
    had it second."""
    keys: dict[str, float] = {}
    ties: dict[int, int] = {}
    for b in sorted((b for b in loads if b.batch_id in at_risk), key=lambda b: (at_risk[b.batch_id], b.seq)):
        deadline = at_risk[b.batch_id]
        rank = ties[deadline] = ties.get(deadline, -1) + 1
        keys[b.batch_id] = deadline + min(rank, _TIES - 1) / _TIES
    return keys


def _moved(written: int | None, at: int | None) -> bool:
    if written is None or at is None:
        return written != at
    return abs(written - at) > ESTIMATE_SLACK_SECONDS


def _interleave(lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for items in itertools.zip_longest(*lists):
        out.extend(i for i in items if i is not None)
    return out
