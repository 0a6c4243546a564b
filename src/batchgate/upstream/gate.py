"""Admission to an upstream: at most its replicas' windows in flight (`upstream/pool.py` binds each admitted request
to a replica); waiting requests are admitted by the scheduling policy (docs/architecture.md, "Scheduling"), one
level inside the other:

1. urgent flows (batches at risk of missing their deadline) first, earliest deadline first;
2. else between projects by weighted fair queueing: start-time fair queueing, each project's next request tagged
   with a virtual start time; the smallest tag goes next and the project's tag moves on by cost / weight. A
   project that becomes active starts at the current virtual time (the tag of the request last admitted), so an
   idle project hoards no credit. The cost of a request is 1: the fair unit is a request, the unit the claim order,
   the estimates and `request_counts` count in; a latency-based cost would measure the engine's queueing as much
   as a flow's own work, and the window moves that queueing every round trip;
3. between the batches (flows) of one project round robin, one request each;
4. inside a batch grouped by prompt prefix (a run of one prefix at a time, groups in order of first arrival), so
   an engine's prefix cache keeps hitting. Output order is free in a batch; dispatch order is ours.

Every step is O(1) or O(log n) in the waiting flows and projects; a cancelled waiter is only counted out and
skipped when its turn comes."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from batchgate.upstream.limiter import AdaptiveLimiter
from batchgate.upstream.pool import Pool, Replica


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """How the gate treats one flow (a batch): its project and the project's weight, and its deadline while it
    is at risk (None otherwise)."""

    project: str
    weight: float = 1.0
    urgent: float | None = None


_DEFAULT = FlowSpec("")


class Permit:
    """One admitted request, bound to the replica it runs on. Its slot is held until the `admit` block exits, so a
    caller can keep it while the answer is being recorded: then what a crash can lose is never more than the
    window."""

    __slots__ = ("_gate", "_outcome", "_queued", "_rtt", "replica", "started")

    def __init__(self, gate: Gate, replica: Replica) -> None:
        self._gate = gate
        self.replica = replica
        self.started = time.monotonic()  # when it left for the engine
        self._outcome = "abandoned"
        self._rtt = 0.0
        self._queued = False

    def waiting(self) -> None:
        """The executor holds it before it reaches the engine (a paced connection): batchgate's own queueing, so
        it is not at the engine yet, and its latency counts from `sent`."""
        self._queued = True
        self.replica.limiter.on_queued()

    def sent(self) -> None:
        """It left for the engine, after `waiting`."""
        self._queued = False
        self.started = time.monotonic()
        self.replica.limiter.on_sent()

    def done(self) -> None:
        """An ordinary answer arrived (its latency is measured now, not when the slot is released)."""
        self._outcome, self._rtt = "done", time.monotonic() - self.started
        # No longer at the engine, though its slot is held while it is recorded: the engine's place is free now.
        self.replica.limiter.on_answer()
        self._gate.pool.released(self.replica)  # its replica's held waiters first, then the gate's

    def overloaded(self) -> None:
        """The upstream said it is full."""
        self._outcome = "overloaded"

    def timed_out(self) -> None:
        """No answer within the request timeout: congestion (a queue too long for the timeout, or a stuck engine)."""
        self._outcome = "timed_out"

    def release(self) -> None:
        lim = self.replica.limiter
        if self._queued:  # never sent (its connection failed, or it was cancelled while it waited)
            self._queued = False
            lim.on_sent()
        if self._outcome == "done":
            now = time.monotonic()
            lim.on_done(self._rtt, now, now - self.started)  # held: the answer was recorded meanwhile
        elif self._outcome == "overloaded":
            lim.on_overload()
        elif self._outcome == "timed_out":
            now = time.monotonic()
            lim.on_timeout(now, now - self.started)
        else:
            lim.on_abandoned()
        self._gate.pool.released(self.replica)


class _Admission:
    __slots__ = ("_flow", "_gate", "_key", "_permit")

    def __init__(self, gate: Gate, key: bytes, flow: str) -> None:
        self._gate = gate
        self._key = key
        self._flow = flow
        self._permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        replica = await self._gate._acquire(self._key, self._flow)
        self._permit = Permit(self._gate, replica)
        return self._permit

    async def __aexit__(self, *exc: object) -> None:
        if self._permit is not None:
            self._permit.release()


_Fut = asyncio.Future[Replica | None]  # its replica once admitted; None: that replica went down, queue again
_Waiter = list[_Fut | None]  # one cell: emptied once the waiter is counted out (admitted or gone)


class _Flow:
    """The waiters of one flow, grouped by prefix key. `count` is its waiters not yet counted out (a cancelled one
    stays in its group, emptied, until its turn); `mark` tells its current place in the queues from stale entries."""

    __slots__ = ("count", "current", "groups", "mark", "name", "project", "urgent")

    def __init__(self, name: str) -> None:
        self.name = name
        self.groups: dict[bytes, deque[_Waiter]] = {}
        self.current: bytes | None = None
        self.count = 0
        self.mark = 0
        self.project: _Project | None = None  # where it waits: None while urgent
        self.urgent: float | None = None

    def push(self, key: bytes, waiter: _Waiter) -> None:
        self.groups.setdefault(key, deque()).append(waiter)
        self.count += 1

    def pop(self) -> tuple[_Fut, bytes]:
        """Count out the next waiter: the current prefix group's, else the oldest group's. Needs count > 0. Its
        future may be cancelled already (the handler that would count it out has not run yet)."""
        while True:
            key = self.current
            if key is None or key not in self.groups:
                key = next(iter(self.groups))  # the group that has waited longest
                self.current = key
            group = self.groups[key]
            waiter = group.popleft()
            if not group:
                del self.groups[key]
            fut = waiter[0]
            if fut is not None:
                waiter[0] = None
                self.count -= 1
                return fut, key


class _Project:
    """A project's flows in round robin, and its tags for fair queueing."""

    __slots__ = ("count", "entry", "finish", "flows", "name", "start", "weight")

    def __init__(self, name: str) -> None:
        self.name = name
        self.weight = 1.0
        self.flows: deque[tuple[int, _Flow]] = deque()  # (flow.mark when queued, flow)
        self.count = 0  # live waiters of its non-urgent flows
        self.start = 0.0  # virtual start tag of its next request (valid while count > 0)
        self.entry = -1  # its one live entry in the gate's fair heap (older ones are stale)
        self.finish = 0.0  # virtual finish tag of its last admitted request


class Gate:
    def __init__(self, pool: Pool | AdaptiveLimiter) -> None:
        if isinstance(pool, AdaptiveLimiter):  # one anonymous replica: the gate alone, as its tests use it
            pool = Pool("", [Replica("", None, pool)])
        self.pool = pool
        pool.wake = self._wake
        self.waiting = 0
        # called when the window has room and nobody waits, or when a flow's waiters fall to `low_water` (fair
        # queueing can only share between requests that are here: the worker claims that flow's next chunk)
        self.on_hungry: Callable[[], None] | None = None
        self.low_water = 0
        self._specs: dict[str, FlowSpec] = {}
        self._flows: dict[str, _Flow] = {}  # flows with live waiters
        self._projects: dict[str, _Project] = {}
        self._urgent: list[tuple[float, int, int, _Flow]] = []  # (deadline, tie, mark, flow)
        self._fair: list[tuple[float, int, _Project]] = []  # (start tag, tie, project); stale unless it matches
        self._vtime = 0.0
        self._tie = itertools.count()
        self._marks = itertools.count(1)

    @property
    def limiter(self) -> Pool:
        """The route's window as one: capacity, inflight, max_limit, overloads and base_rtt over its replicas."""
        return self.pool

    def admit(self, key: bytes = b"", flow: str = "") -> _Admission:
        """`async with gate.admit(key, flow) as permit`: wait for a slot, held until the block exits; mark the
        permit done, overloaded or timed out (else: abandoned). `flow` is the batch id; `key` its request's
        prefix key."""
        return _Admission(self, key, flow)

    def set_flows(self, flows: dict[str, FlowSpec]) -> None:
        """The flows' projects, weights and deadlines from now on (a flow not named: project "", weight 1). While
        any is at risk of its deadline, the replicas' windows stop yielding to other traffic (limiter.py)."""
        self._specs = dict(flows)
        urgent = any(spec.urgent is not None for spec in flows.values())
        for replica in self.pool.replicas:
            replica.limiter.urgent = urgent
        for flow in list(self._flows.values()):
            spec = self._specs.get(flow.name, _DEFAULT)
            project = flow.project.name if flow.project is not None else None
            if flow.urgent != spec.urgent or (spec.urgent is None and project != spec.project):
                self._detach(flow)
                self._attach(flow)
            elif flow.project is not None:
                flow.project.weight = _weight(spec)

    def flow(self, name: str) -> FlowSpec:
        """How the gate treats `name` now."""
        return self._specs.get(name, _DEFAULT)

    def waiting_for(self, name: str) -> int:
        """Requests of flow `name` waiting for a slot."""
        flow = self._flows.get(name)
        return flow.count if flow is not None else 0

    async def _acquire(self, key: bytes, name: str) -> Replica:
        while True:
            replica = await self._acquire_once(key, name)
            if replica is not None:
                return replica

    async def _acquire_once(self, key: bytes, name: str) -> Replica | None:
        pool = self.pool
        fut: _Fut = asyncio.get_running_loop().create_future()
        waiter: _Waiter = [fut]
        if not self.waiting and pool.has_room():
            waiter[0] = None
            if pool.place(fut, key):
                return fut.result()
        else:
            flow = self._flows.get(name)
            if flow is None:
                flow = self._flows[name] = _Flow(name)
            flow.push(key, waiter)
            self.waiting += 1
            if flow.count == 1:
                self._attach(flow)
            elif flow.project is not None:
                self._grow(flow.project, 1)
        try:
            return await fut  # admitted (maybe held for its replica first), or None: queue again
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                replica = fut.result()
                if replica is not None:  # we were granted a slot as we were cancelled: give it back
                    replica.limiter.on_abandoned()
                    pool.released(replica)
            elif waiter[0] is not None:  # else its turn came first, and `_wake` counted it out
                self._discard(name, waiter)
            raise

    def _discard(self, name: str, waiter: _Waiter) -> None:
        """A waiter of `name` was cancelled: count it out (its emptied cell is skipped when its turn comes)."""
        waiter[0] = None
        flow = self._flows[name]
        flow.count -= 1
        self.waiting -= 1
        if flow.project is not None:
            flow.project.count -= 1
        if flow.count == 0:
            self._detach(flow)
            del self._flows[name]

    def _attach(self, flow: _Flow) -> None:
        """Queue a flow that has waiters: on the urgent heap, or in its project's round robin."""
        spec = self._specs.get(flow.name, _DEFAULT)
        flow.mark = next(self._marks)
        flow.urgent = spec.urgent
        if spec.urgent is not None:
            flow.project = None
            heapq.heappush(self._urgent, (spec.urgent, next(self._tie), flow.mark, flow))
            return
        project = self._projects.get(spec.project)
        if project is None:
            project = self._projects[spec.project] = _Project(spec.project)
        project.weight = _weight(spec)
        flow.project = project
        project.flows.append((flow.mark, flow))
        self._grow(project, flow.count)

    def _grow(self, project: _Project, n: int) -> None:
        project.count += n
        if project.count == n:  # newly active: from the current virtual time, or later if it ran ahead
            project.start = max(self._vtime, project.finish)
            self._queue(project)

    def _queue(self, project: _Project) -> None:
        project.entry = next(self._tie)
        heapq.heappush(self._fair, (project.start, project.entry, project))

    def _detach(self, flow: _Flow) -> None:
        """Take a flow out of its queue (its entries there go stale)."""
        flow.mark = 0
        if flow.project is not None:
            flow.project.count -= flow.count
            flow.project = None

    def _next(self) -> _Flow:
        """The flow whose waiter goes next (needs self.waiting > 0)."""
        while self._urgent:
            _, _, mark, flow = self._urgent[0]
            if mark == flow.mark and flow.count:
                return flow
            heapq.heappop(self._urgent)
        while True:
            start, entry, project = self._fair[0]
            if project.count == 0 or entry != project.entry:
                heapq.heappop(self._fair)
                continue
            while True:
                mark, flow = project.flows[0]
                if mark == flow.mark and flow.count:
                    break
                project.flows.popleft()
            # One request of this project: its tag moves on by the cost (1) over its weight.
            self._vtime = start
            project.finish = start + 1.0 / project.weight
            project.count -= 1
            heapq.heappop(self._fair)
            if project.count:
                project.start = project.finish
                self._queue(project)
            project.flows.rotate(-1)  # round robin: the next request of this project is the next flow's
            return flow

    def _wake(self) -> None:
        pool = self.pool
        low = False
        while self.waiting and pool.has_room():
            flow = self._next()
            fut, key = flow.pop()
            self.waiting -= 1
            low = low or flow.count == self.low_water
            if flow.count == 0:
                self._detach(flow)
                del self._flows[flow.name]
            if fut.done():
                continue  # cancelled, its handler not run yet: counted out here, the slot goes to the next
            pool.place(fut, key)
        if self.on_hungry is not None and (low or (self.waiting == 0 and pool.has_room())):
            self.on_hungry()


def _weight(spec: FlowSpec) -> float:
    return spec.weight if spec.weight > 0 else 1.0
