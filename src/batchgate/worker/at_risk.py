"""The batches the planner serves first because they are at risk of missing their window, and saying so.

The plan (domain/schedule.py) names the at-risk set afresh at every tick. `AtRisk` remembers since when each batch
has been in it, gives the planner the marks to write (`batches.at_risk_since`, which the batch object, its events,
the dashboard and `batchgate batches get` show), and logs each change once, never per tick: a WARNING when a batch
starts going first, saying so when its route's windows had been yielding to the engine's other traffic (they stop
yielding while a batch is at risk, so the batch takes capacity those users would have had), and an INFO when it
leaves the set (a WARNING when it leaves because it would miss its window even served first).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from batchgate.domain.load import BatchLoad
from batchgate.domain.schedule import Plan
from batchgate.upstream.router import Route

log = logging.getLogger("batchgate.worker")


@dataclass(frozen=True, slots=True)
class _Mark:
    since: int  # unix seconds
    project: str
    route: str


class AtRisk:
    """One planner's view: the batches it found at risk, since when, and what it wrote of them."""

    def __init__(self) -> None:
        self._marks: dict[str, _Mark] = {}
        self._written: set[str] = set()  # the marks this planner last wrote
        self._clearing: set[str] = set()  # marks taken off since the last full write: taken off once more then

    def since(self) -> dict[str, int]:
        """Since when (unix seconds) each batch has been at risk."""
        return {batch_id: m.since for batch_id, m in self._marks.items()}

    def update(self, now: float, p: Plan, loads: Mapping[str, BatchLoad], yielding: Callable[[str], bool]) -> None:
        """Take the plan made at `now` (unix seconds) from `loads`, logging every batch that entered or left the
        at-risk set. `yielding(route)`: whether that route's windows were yielding to other traffic before it."""
        for batch_id in sorted(p.at_risk, key=lambda b: (p.at_risk[b], b)):
            if batch_id in self._marks:
                continue
            load = loads[batch_id]
            route = p.route.get(batch_id, "")
            self._marks[batch_id] = _Mark(int(now), load.project, route)
            log.warning("batch %s (project %s) is at risk of missing its window (expires at %s): it goes first on "
                        "upstream %s%s", batch_id, load.project, _when(load.expires_at), route,
                        " and takes capacity the engine's other traffic would have had" if yielding(route) else "",
                        extra={"batch_id": batch_id})
        for batch_id in [b for b in self._marks if b not in p.at_risk]:
            mark = self._marks.pop(batch_id)
            running = loads.get(batch_id)
            finish = p.finish.get(batch_id)
            if running is None:
                log.info("batch %s (project %s) is no longer at risk of missing its window: it stopped running "
                         "(done, paused, cancelled or expiring)", batch_id, mark.project, extra={"batch_id": batch_id})
            elif finish is not None and finish > running.expires_at:
                log.warning("batch %s (project %s) would miss its window (expires at %s) even served first: it takes "
                            "its fair share on upstream %s again (done at about %s), so that the batches behind it "
                            "make theirs", batch_id, mark.project, _when(running.expires_at), mark.route, _when(finish),
                            extra={"batch_id": batch_id})
            else:
                log.info("batch %s (project %s) is no longer at risk of missing its window: it takes its fair share "
                         "on upstream %s again", batch_id, mark.project, mark.route, extra={"batch_id": batch_id})

    def marks(self, everything: bool) -> list[tuple[str, int | None]]:
        """The marks to write, by batch id: those put on (since when) or taken off (None) since the last call; with
        `everything`, every mark again and each taken off since the last such call (a PostgreSQL write skips a row
        another transaction holds; the store writes only what changes)."""
        off = self._written - self._marks.keys()
        self._clearing -= self._marks.keys()  # at risk again before the next full write
        if everything:
            out = {**{b: m.since for b, m in self._marks.items()}, **dict.fromkeys(self._clearing | off)}
            self._clearing = off
        else:
            out = {**{b: m.since for b, m in self._marks.items() if b not in self._written}, **dict.fromkeys(off)}
            self._clearing |= off
        self._written = set(self._marks)
        return sorted(out.items())


def yields_to_others(route: Route) -> bool:
    """Whether the route's windows yield to the engine's other traffic, or would but for a batch at risk: a
    neighbourly replica whose engine shows other traffic."""
    return any(r.limiter.neighbourly and (r.limiter.yielding() or r.limiter.foreign >= 1) for r in route.pool.replicas)


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
