"""The worker loop: claim batch tasks and chunks, keep their leases alive, stop what must stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batchgate import clock, logs
from batchgate.blobs.base import BlobStore
from batchgate.domain.batch import BatchError
from batchgate.domain.retry import RetryPolicy
from batchgate.domain.work import BatchTask, ChunkClaim, TaskKind
from batchgate.errors import BatchgateError, InsufficientStorage
from batchgate.metrics import Metrics
from batchgate.services.files import FileService
from batchgate.services.tokens import PromptTokenCounter
from batchgate.settings import Settings
from batchgate.store.base import Store
from batchgate.upstream.router import Router
from batchgate.worker.buffer import LeaseLost
from batchgate.worker.chunk import ChunkRunner
from batchgate.worker.execute import RequestExecutor
from batchgate.worker.finalize import finalize_batch
from batchgate.worker.identity import is_dead_local, worker_id
from batchgate.worker.validate import validate_batch
from batchgate.worker.webhooks import WebhookSender

log = logging.getLogger("batchgate.worker")

CHORE_INTERVAL = 5.0
# A validate or finalize task that keeps failing (e.g. the disk is full) fails its batch after this many tries
# in this process, instead of being retried at every lease expiry forever.
MAX_TASK_FAILURES = 3


class Worker:
    def __init__(
        self, settings: Settings, store: Store, blobs: BlobStore, router: Router, files: FileService,
        metrics: Metrics | None = None,
    ) -> None:
        self.id = worker_id()
        self._s = settings
        self._store = store
        self._blobs = blobs
        self._router = router
        self._files = files
        policy = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
        self._metrics = metrics or Metrics()
        executor = RequestExecutor(policy, settings.request_timeout, settings.overload_max_seconds, self._metrics)
        self._chunks = ChunkRunner(store, blobs, router, executor, settings.prefix_grouping)
        self._running: dict[tuple[str, int], tuple[ChunkClaim, asyncio.Task[None]]] = {}
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self._task_failures: dict[str, int] = {}
        self._tokens = PromptTokenCounter() if settings.enqueued_token_limit is not None else None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._last_chores = 0.0
        self._webhooks = WebhookSender(settings, store, self.id)

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        for route in self._router.routes:
            route.gate.on_hungry = self.notify  # an upstream about to run dry: claim more now, not at the next poll
        self._metrics.watch_routes(self._router.routes)
        self._metrics.count_chunks(lambda: len(self._running))
        await self._release_dead_owners()
        await self._webhooks.start()
        self._loop_task = asyncio.create_task(self._loop(), name="worker-loop")
        self._beat_task = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        log.info("worker %s started", self.id)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; abandon chunks (finished results are flushed, leases released for others)."""
        self._stopping.set()
        self._wake.set()
        for t in (self._loop_task,):
            if t is not None:
                await asyncio.gather(t, return_exceptions=True)
        tasks = [t for _, t in self._running.values()] + list(self._batch_tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._beat_task is not None:
            self._beat_task.cancel()
            await asyncio.gather(self._beat_task, return_exceptions=True)
        await self._webhooks.stop(grace)
        self._metrics.watch_routes([])

    def notify(self) -> None:
        """New work was just written (e.g. a batch created in this process): look now, not at the next poll."""
        self._wake.set()

    # -- main loop ----------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                found = await self._tick()
            except Exception:
                log.exception("worker loop error")
                found = False
            if not found:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._s.poll_interval)
                self._wake.clear()

    async def _tick(self) -> bool:
        now = clock.now_f()
        if now - self._last_chores > CHORE_INTERVAL:
            self._last_chores = now
            for r in self._router.routes:
                lim = r.gate.limiter
                if lim.inflight or r.gate.waiting:
                    log.info("upstream %s: window %d, in flight %d, waiting %d, overloads %d", r.name,
                             lim.capacity, lim.inflight, r.gate.waiting, lim.overloads)
            await self._release_dead_owners()
            await self._files.purge_expired()
        await self._store.mark_expiring(clock.now())
        found = False
        if len(self._batch_tasks) < 2:
            task = await self._store.claim_batch_task(self.id, clock.now_f(), self._s.lease_seconds)
            if task is not None:
                found = True
                t = asyncio.create_task(self._run_batch_task(task), name=f"{task.kind}-{task.batch.id}")
                self._batch_tasks.add(t)
                t.add_done_callback(self._batch_tasks.discard)
        free = self._s.max_chunks_in_flight - len(self._running)
        # Take more work only while the upstreams would otherwise run dry: other workers get the rest.
        need = self._router.shortfall()
        if free > 0 and need > 0:
            want = min(free, -(-need // self._s.chunk_size))
            for claim in await self._store.claim_chunks(self.id, clock.now_f(), self._s.lease_seconds, want):
                found = True
                key = (claim.batch_id, claim.spec.index)
                t = asyncio.create_task(self._run_chunk(claim), name=f"chunk-{key}")
                self._running[key] = (claim, t)
        await self._webhooks.tick()  # sends in tasks of its own; nothing for this loop to hurry for
        return found

    async def _run_chunk(self, claim: ChunkClaim) -> None:
        logs.batch_id.set(claim.batch_id)  # this task's log lines (and its request tasks') name the batch
        key = (claim.batch_id, claim.spec.index)
        try:
            await self._chunks.run(claim)
        except asyncio.CancelledError:
            log.info("%s chunk %d stopped", claim.batch_id, claim.spec.index)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_chunk(claim.batch_id, claim.spec.index, claim.generation))
        except Exception as e:
            if _has(e, LeaseLost):
                log.warning("%s chunk %d: lease lost to another worker", claim.batch_id, claim.spec.index)
            else:
                log.exception("%s chunk %d failed; releasing it for a retry", claim.batch_id, claim.spec.index)
                with contextlib.suppress(Exception):
                    await self._store.release_chunk(claim.batch_id, claim.spec.index, claim.generation)
        finally:
            self._running.pop(key, None)
            self._wake.set()

    async def _run_batch_task(self, task: BatchTask) -> None:
        b = task.batch
        logs.batch_id.set(b.id)
        keeper = asyncio.create_task(self._keep_batch_lease(task, asyncio.current_task()))
        try:
            if task.kind is TaskKind.VALIDATE:
                await validate_batch(task, self._store, self._blobs, self._router, self._s.chunk_size,
                                     self._s.max_validation_errors, self._s.enqueued_token_limit, self._tokens,
                                     limits=self._s.batch_limits)
            else:
                await finalize_batch(task, self._store, self._blobs)
        except asyncio.CancelledError:
            log.warning("%s task for batch %s interrupted", task.kind, b.id)
        except Exception as e:
            failures = self._task_failures.get(b.id, 0) + 1
            self._task_failures[b.id] = failures
            if failures < MAX_TASK_FAILURES:
                log.exception("%s task for batch %s failed (%d/%d); it will be retried", task.kind, b.id, failures,
                              MAX_TASK_FAILURES)
            else:
                log.exception("%s task for batch %s failed %d times; failing the batch", task.kind, b.id, failures)
                await self._give_up(task, e)
        finally:
            keeper.cancel()
            self._webhooks.poke()  # the batch may have just ended: its events go out at the next tick
            await asyncio.gather(keeper, return_exceptions=True)
            self._wake.set()

    async def _give_up(self, task: BatchTask, e: Exception) -> None:
        code = "storage_error" if isinstance(e, InsufficientStorage) else "internal_error"
        message = e.message if isinstance(e, BatchgateError) else f"{type(e).__name__} while processing the batch."
        try:
            if await self._store.fail_batch(task.batch.id, task.generation, [BatchError(code, message)], clock.now()):
                self._task_failures.pop(task.batch.id, None)
        except Exception:
            log.exception("could not mark batch %s failed; it will be retried", task.batch.id)

    async def _keep_batch_lease(self, task: BatchTask, owner: asyncio.Task[None] | None) -> None:
        while True:
            await asyncio.sleep(self._s.heartbeat_interval)
            status = await self._store.renew_batch(task.batch.id, task.generation,
                                                   clock.now_f() + self._s.lease_seconds)
            if status is None and owner is not None:
                owner.cancel()
                return

    # -- heartbeat: renew chunk leases; stop chunks whose batch is cancelled or expired --------------------
    async def _heartbeat(self) -> None:
        interval = min(self._s.heartbeat_interval, 1.0)
        while True:
            await asyncio.sleep(interval)
            if not self._running:
                continue
            claims = [(c.batch_id, c.spec.index, c.generation) for c, _ in self._running.values()]
            try:
                beat = await self._store.renew_chunks(claims, clock.now_f() + self._s.lease_seconds)
            except Exception:
                log.exception("heartbeat failed")
                continue
            for key, (claim, t) in list(self._running.items()):
                if key in beat.lost or claim.batch_id in beat.stop_batches:
                    t.cancel()

    async def _release_dead_owners(self) -> None:
        for owner in await self._store.lease_owners():
            if is_dead_local(owner, self.id):
                log.info("releasing leases of %s (process gone)", owner)
                await self._store.release_owner(owner)


def _has(e: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(e, BaseExceptionGroup):
        return e.subgroup(kind) is not None
    return isinstance(e, kind)
