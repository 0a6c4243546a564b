"""The worker's chores between claims: mark batches past their window as expiring at every tick, and every
CHORE_INTERVAL seconds log the busy upstreams' gates, release the leases of dead local processes, remove the
bytes of deleted and expired files, drop the results kept for followers of batches finished an hour ago, and
forget the idempotency keys older than a day."""

from __future__ import annotations

import logging

from batchgate import clock
from batchgate.services.files import FileService
from batchgate.store.base import WorkerStore
from batchgate.upstream.router import Router
from batchgate.worker.identity import is_dead_local

log = logging.getLogger("batchgate.worker")

CHORE_INTERVAL = 5.0


class Chores:
    def __init__(self, store: WorkerStore, files: FileService, router: Router, worker_id: str) -> None:
        self._store = store
        self._files = files
        self._router = router
        self._worker_id = worker_id
        self._last = 0.0

    async def run(self) -> None:
        now = clock.now_f()
        if now - self._last > CHORE_INTERVAL:
            self._last = now
            self.log_gates()
            await self.release_dead_owners()
            await self._files.purge()
            await self._store.drop_kept_results(clock.now(), 100)
            await self._store.purge_idempotency_keys(clock.now())
        await self._store.mark_expiring(clock.now())

    def log_gates(self) -> None:
        for r in self._router.routes:
            lim = r.gate.limiter
            if lim.inflight or r.gate.waiting:
                up = sum(x.up for x in r.pool.replicas)
                replicas = f", replicas up {up}/{len(r.pool.replicas)}" if len(r.pool.replicas) > 1 else ""
                log.info("upstream %s: window %d, in flight %d, waiting %d, overloads %d%s", r.name,
                         lim.capacity, lim.inflight, r.gate.waiting + r.pool.held, lim.overloads, replicas)

    async def release_dead_owners(self) -> None:
        for owner in await self._store.lease_owners():
            if is_dead_local(owner, self._worker_id):
                log.info("releasing leases of %s (process gone)", owner)
                await self._store.release_owner(owner)
