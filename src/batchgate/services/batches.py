"""Creating, reading, listing and cancelling batches. Execution is the worker's: this only writes state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from batchgate import clock, ids
from batchgate.domain.batch import Batch
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import BatchStatus
from batchgate.errors import Conflict, NotFound
from batchgate.protocol.requests import CreateBatch
from batchgate.services.auth import Principal
from batchgate.store.base import BatchStore, Page


def _no_worker() -> None:
    pass


class BatchService:
    def __init__(self, store: BatchStore, window_scale: float = 1.0, wake: Callable[[], None] | None = None) -> None:
        """`wake`: called after a batch is created or cancelled, so a worker in this process looks now instead of
        at its next poll (thread-safe when that worker runs on another thread)."""
        self._store = store
        self._window_scale = window_scale
        self._wake = wake or _no_worker

    async def create(self, who: Principal, req: CreateBatch) -> Batch:
        now = clock.now()
        batch = Batch(
            id=ids.batch_id(),
            project=who.project,
            endpoint=req.endpoint,
            input_file_id=req.input_file_id,
            completion_window=req.completion_window,
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + max(1, round(req.window_seconds * self._window_scale)),
            metadata=req.metadata,
            output_expires_after=req.output_expires_after,
        )
        await self._store.insert_batch(batch)
        self._wake()
        return batch

    async def get(self, who: Principal, batch_id: str) -> Batch:
        b = await self._store.get_batch(batch_id)
        if b is None or (b.project != who.project and not who.admin):
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        return b

    async def list(
        self, who: Principal, after: str | None, limit: int, status: BatchStatus | None = None,
        openai_only: bool = False,
    ) -> Page[Batch]:
        """Newest first; only those in `status` when given (the dashboard's filter); with `openai_only`, not the
        Anthropic Message Batches (GET /v1/batches lists only what POST /v1/batches creates)."""
        return await self._store.list_batches(None if who.admin else who.project, after, limit, status,
                                              other_than=MESSAGES_ENDPOINT if openai_only else None)

    async def count_by_status(self) -> dict[BatchStatus, int]:
        """Batches of every project in each status (for operators: metrics)."""
        return await self._store.count_batches_by_status()

    async def cancel(self, who: Principal, batch_id: str) -> Batch:
        await self.get(who, batch_id)
        b = await self._store.request_cancel(batch_id, clock.now())
        if b is None:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        if b.status in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED):
            raise Conflict(f"Cannot cancel a batch with status '{b.status.value}'.")
        self._wake()
        return b

    async def recorded_results(self, who: Principal, batch_id: str) -> AsyncIterator[tuple[bool, bytes]]:
        """The results an unfinished batch has recorded so far, in line order: (went to the output file, line).
        For writing out what an interrupted `batchgate run` has; a finished batch's are in its files instead."""
        await self.get(who, batch_id)
        for spec in await self._store.chunk_specs(batch_id):
            for _, ok, data in sorted(await self._store.results_in(batch_id, spec.first_line, spec.last_line)):
                yield ok, data
