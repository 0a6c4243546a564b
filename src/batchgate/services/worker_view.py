"""What the API and the dashboard may ask of the worker that runs in their process (`serve` with its worker
thread): the live state of its routes. Declared here, below both, so neither imports the worker or the wiring
that builds it; `wiring/worker_thread.py` implements it. New work wakes the worker through the hook given to
`BatchService`, not through this view."""

from __future__ import annotations

from typing import Protocol

from batchgate.domain.route_state import RouteState


class WorkerView(Protocol):
    async def route_states(self) -> list[RouteState] | None:
        """Each route's state, read on the worker's own loop; None when the worker is not running. Raises
        TimeoutError when the worker's loop does not answer in time."""
        ...
