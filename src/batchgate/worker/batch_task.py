"""Running a claimed batch task (validate or finalize) under its lease, counting its failures in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from batchgate import clock, logs
from batchgate.domain.batch import BatchError
from batchgate.domain.work import BatchTask, TaskKind
from batchgate.errors import BatchgateError, InsufficientStorage
from batchgate.store.base import TaskStore
from batchgate.worker.failures import MAX_TASK_FAILURES
from batchgate.worker.finalize import Finalize
from batchgate.worker.leases import BatchLease
from batchgate.worker.validate import Validate

log = logging.getLogger("batchgate.worker")


class BatchTasks:
    def __init__(
        self, store: TaskStore, validate: Validate, finalize: Finalize, heartbeat_interval: float,
        lease_seconds: float, on_done: Callable[[], None],
    ) -> None:
        self._store = store
        self._validate = validate
        self._finalize = finalize
        self._interval = heartbeat_interval
        self._lease_seconds = lease_seconds
        self._on_done = on_done  # the batch may have just ended: its events go out, the loop looks again
        self._failures: dict[str, int] = {}

    async def run(self, task: BatchTask) -> None:
        b = task.batch
        logs.batch_id.set(b.id)
        step = self._validate if task.kind is TaskKind.VALIDATE else self._finalize
        try:
            # The lease is kept until the failure is handled too: fail_batch below is fenced by it.
            async with BatchLease(self._store, task, self._interval, self._lease_seconds):
                try:
                    await step.run(task)
                except asyncio.CancelledError:
                    log.warning("%s task for batch %s interrupted", task.kind, b.id)
                except Exception as e:
                    await self._failed(task, e)
        finally:
            self._on_done()

    async def _failed(self, task: BatchTask, e: Exception) -> None:
        b = task.batch
        failures = self._failures.get(b.id, 0) + 1
        self._failures[b.id] = failures
        if failures < MAX_TASK_FAILURES:
            log.exception("%s task for batch %s failed (%d/%d); it will be retried", task.kind, b.id, failures,
                          MAX_TASK_FAILURES)
        else:
            log.exception("%s task for batch %s failed %d times; failing the batch", task.kind, b.id, failures)
            await self._give_up(task, e)

    async def _give_up(self, task: BatchTask, e: Exception) -> None:
        code = "storage_error" if isinstance(e, InsufficientStorage) else "internal_error"
        message = e.message if isinstance(e, BatchgateError) else f"{type(e).__name__} while processing the batch."
        try:
            if await self._store.fail_batch(task.batch.id, task.generation, [BatchError(code, message)], clock.now()):
                self._failures.pop(task.batch.id, None)
        except Exception:
            log.exception("could not mark batch %s failed; it will be retried", task.batch.id)
