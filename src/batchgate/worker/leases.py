"""Leases kept alive while work runs: a batch task's lease, and the heartbeat of every running chunk's lease.
Each is an `async with`: renewal runs beside the work, and a lease lost cancels the work that held it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import NamedTuple

from batchgate import clock
from batchgate.domain.work import BatchTask, ChunkClaim
from batchgate.store.base import TaskStore, WorkQueue
from batchgate.worker.drain import Drain

log = logging.getLogger("batchgate.worker")


class Running(NamedTuple):
    """A chunk this worker runs: its claim (for the heartbeat's renewal), the task running it, and its drain
    (started when its batch is paused)."""

    claim: ChunkClaim
    task: asyncio.Task[None]
    drain: Drain


class BatchLease:
    """Renews a batch task's lease every `interval` seconds while the block runs; if the lease is lost (another
    worker took the batch over), `lost` is set and the task that entered the block is cancelled."""

    def __init__(self, store: TaskStore, task: BatchTask, interval: float, lease_seconds: float) -> None:
        self._store = store
        self._task = task
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._keeper: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> BatchLease:
        self._keeper = asyncio.create_task(self._keep(asyncio.current_task()))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)

    async def _keep(self, owner: asyncio.Task[None] | None) -> None:
        while True:
            await asyncio.sleep(self._interval)
            status = await self._store.renew_batch(self._task.batch.id, self._task.generation,
                                                   clock.now_f() + self._lease_seconds)
            if status is None and owner is not None:
                self.lost = True
                owner.cancel()
                return


class ChunkHeartbeat:
    """Renews the leases of the chunks in `running` (at most every second, and at once when poked: a batch of this
    process was just cancelled or paused); cancels a chunk whose lease was lost or whose batch is cancelled or
    expired, and drains one whose batch is paused."""

    def __init__(
        self, store: WorkQueue, running: dict[tuple[str, int], Running], interval: float, lease_seconds: float
    ) -> None:
        self._store = store
        self._running = running
        self._interval = min(interval, 1.0)
        self._lease_seconds = lease_seconds
        self._beat: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Beat now rather than at the next interval (call on the worker's loop)."""
        self._poked.set()

    async def __aenter__(self) -> ChunkHeartbeat:
        self._beat = asyncio.create_task(self._loop(), name="worker-heartbeat")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._interval)
            self._poked.clear()
            if not self._running:
                continue
            claims = [(r.claim.batch_id, r.claim.spec.index, r.claim.generation) for r in self._running.values()]
            try:
                beat = await self._store.renew_chunks(claims, clock.now_f() + self._lease_seconds)
            except Exception:
                log.exception("heartbeat failed")
                continue
            for key, (claim, t, drain) in list(self._running.items()):
                if key in beat.lost or claim.batch_id in beat.stop_batches:
                    t.cancel()
                elif claim.batch_id in beat.pause_batches:
                    drain.start()
