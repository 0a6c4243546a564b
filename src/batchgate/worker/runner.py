"""The worker: the claim loop. It claims batch tasks and chunks and hands each to its task object; leases
(leases.py), failures (batch_task.py, chunk.py) and chores (chores.py) are kept by those."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batchgate import clock
from batchgate.blobs.base import BlobStore
from batchgate.domain.retry import RetryPolicy
from batchgate.domain.work import ChunkClaim
from batchgate.metrics import Metrics
from batchgate.services.files import FileService
from batchgate.settings import Settings
from batchgate.store.base import WorkerStore
from batchgate.upstream.router import Router
from batchgate.worker.batch_task import BatchTasks
from batchgate.worker.chores import Chores
from batchgate.worker.chunk import ChunkTask
from batchgate.worker.drain import Drain
from batchgate.worker.execute import RequestExecutor
from batchgate.worker.finalize import Finalize
from batchgate.worker.identity import worker_id
from batchgate.worker.leases import ChunkHeartbeat, Running
from batchgate.worker.notices import Notices
from batchgate.worker.planner import Planner
from batchgate.worker.validate import Validate, ValidateRules
from batchgate.worker.webhooks import WebhookSender

log = logging.getLogger("batchgate.worker")

LOOP_BACKOFF_MAX_SECONDS = 5.0


class Worker:
    def __init__(
        self, settings: Settings, store: WorkerStore, blobs: BlobStore, router: Router, files: FileService,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = worker_id()
        self._s = settings
        self._store = store
        self._router = router
        policy = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        self._metrics = metrics or Metrics()
        executor = RequestExecutor(policy, settings.request_timeout, settings.overload_max_seconds, self._metrics)
        self._chunks = ChunkTask(store, blobs, router, executor, settings.prefix_grouping, Notices(log))
        rules = ValidateRules(settings.chunk_size, settings.max_validation_errors, settings.enqueued_token_limit,
                              settings.batch_limits)
        self._batch_tasks = BatchTasks(store, Validate(store, blobs, router, rules), Finalize(store, blobs, files),
                                       settings.heartbeat_interval, settings.lease_seconds, self._batch_task_done)
        self._chores = Chores(store, files, router, self.id)
        self._planner = Planner(store, router, settings.chunk_size)
        self._running: dict[tuple[str, int], Running] = {}
        self._heartbeat = ChunkHeartbeat(store, self._running, settings.heartbeat_interval, settings.lease_seconds)
        self._batch_running: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._leases = contextlib.AsyncExitStack()
        self._webhooks = WebhookSender(settings, store, self.id)

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        for route in self._router.routes:
            # an upstream about to run dry, or a batch out of requests at its gate: claim now, not at the next poll
            route.gate.on_hungry = self._wake.set
        self._metrics.watch_routes(self._router.routes)
        self._metrics.count_chunks(lambda: len(self._running))
        await self._chores.release_dead_owners()
        await self._webhooks.start()
        self._loop_task = asyncio.create_task(self._loop(), name="worker-loop")
        await self._leases.enter_async_context(self._heartbeat)
        log.info("worker %s started", self.id)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; abandon chunks (finished results are flushed, leases released for others)."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        tasks = [r.task for r in self._running.values()] + list(self._batch_running)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._leases.aclose()
        await self._webhooks.stop(grace)
        self._metrics.watch_routes([])

    def notify(self) -> None:
        """New work was just written (e.g. a batch created in this process), or a batch was cancelled or paused:
        look now, and tell the running chunks now, not at the next poll or heartbeat."""
        self._planner.poke()
        self._heartbeat.poke()
        self._wake.set()

    # -- the claim loop -----------------------------------------------------------------------------------
    async def _loop(self) -> None:
        errors = 0  # ticks failed in a row (the database is down, say): logged once, and polled less often
        while not self._stopping.is_set():
            wait = self._s.poll_interval
            try:
                found = await self._tick()
            except Exception:
                if errors == 0:
                    log.exception("worker loop error; retrying with backoff")
                else:
                    log.debug("worker loop error again", exc_info=True)
                errors += 1
                found = False
                wait = min(LOOP_BACKOFF_MAX_SECONDS, wait * 2 ** min(errors, 16))
            else:
                if errors:
                    log.info("worker loop recovered after %d failed attempts", errors)
                errors = 0
            if not found:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def _tick(self) -> bool:
        await self._chores.run()
        found = False
        if len(self._batch_running) < 2:
            task = await self._store.claim_batch_task(self.id, clock.now_f(), self._s.lease_seconds)
            if task is not None:
                found = True
                t = asyncio.create_task(self._batch_tasks.run(task), name=f"{task.kind}-{task.batch.id}")
                self._batch_running.add(t)
                t.add_done_callback(self._batch_running.discard)
        await self._planner.refresh()
        free = self._s.max_chunks_in_flight - len(self._running)
        # Take more work only while the upstreams would otherwise run dry, or a batch has little waiting at its
        # gate: other workers get the rest. Which chunks: the planner's choice, by the scheduling policy.
        wants = self._planner.wants(free) if free > 0 else []
        if wants:
            claims = await self._store.claim_chunks_of(self.id, clock.now_f(), self._s.lease_seconds, wants)
            self._planner.claimed(claims)
            for claim in claims:
                found = True
                key = (claim.batch_id, claim.spec.index)
                drain = Drain()
                t = asyncio.create_task(self._run_chunk(key, claim, drain), name=f"chunk-{key}")
                self._running[key] = Running(claim, t, drain)
        await self._webhooks.tick()  # sends in tasks of its own; nothing for this loop to hurry for
        return found

    async def _run_chunk(self, key: tuple[str, int], claim: ChunkClaim, drain: Drain) -> None:
        try:
            await self._chunks.run(claim, drain)
        finally:
            self._running.pop(key, None)
            self._planner.released(claim.batch_id)
            self._wake.set()

    def _batch_task_done(self) -> None:
        self._webhooks.poke()  # the batch may have just ended: its events go out at the next tick
        self._planner.poke()  # or started: plan it in now
        self._wake.set()
