"""Creating, reading, listing, cancelling, pausing, resuming and retrying batches. Execution is the worker's: this only
writes state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from batchgate import clock, ids
from batchgate.domain.batch import Batch, RetryOnly, window_seconds
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import PAUSABLE, BatchStatus
from batchgate.errors import Conflict, InvalidRequest, NotFound
from batchgate.protocol.requests import CreateBatch, RetryBatch
from batchgate.services.auth import Principal
from batchgate.store.base import BatchStore, Page

# What a retry starts from: an ended batch with its output and error files (the error file says which lines).
RETRYABLE = frozenset({BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})


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

    async def pause(self, who: Principal, batch_id: str) -> Batch:
        """Stop dispatching the batch's requests; those already sent finish (a paused batch stays paused)."""
        await self.get(who, batch_id)
        b = await self._store.pause_batch(batch_id, clock.now())
        if b is None:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        if not b.paused:
            raise Conflict(f"Cannot pause a batch with status '{b.status.value}'.")
        self._wake()  # a worker of this process drains the batch's chunks now, not at its next heartbeat
        return b

    async def resume(self, who: Principal, batch_id: str) -> Batch:
        """Dispatch a paused batch's requests again, from where it stopped (a running batch stays running)."""
        await self.get(who, batch_id)
        b = await self._store.resume_batch(batch_id)
        if b is None:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        if b.status not in PAUSABLE:
            raise Conflict(f"Cannot resume a batch with status '{b.status.value}'.")
        self._wake()
        return b

    async def retry(self, who: Principal, batch_id: str, req: RetryBatch) -> Batch:
        """A new batch over the ended batch's failed (or unfinished) lines, reading the same input file; the
        worker picks the lines when it validates it. Asked again, the same retry is returned, not a second one."""
        b = await self.get(who, batch_id)
        if b.endpoint == MESSAGES_ENDPOINT:
            raise InvalidRequest("A Message Batch cannot be retried through /v1/batches.", param="id")
        if b.status not in RETRYABLE:
            # A failed batch has no output or error file to say which lines to run: its input was rejected, or it
            # failed as a whole.
            raise Conflict(f"Only a completed, expired or cancelled batch can be retried; batch '{batch_id}' is "
                           f"'{b.status.value}'.")
        counts = b.request_counts
        lines = counts.failed - counts.not_run if req.only is RetryOnly.FAILED else counts.not_run
        if lines == 0:
            what = "failed" if req.only is RetryOnly.FAILED else "unfinished"
            raise Conflict(f"Batch '{batch_id}' has no {what} lines to retry.")
        window = req.completion_window or b.completion_window
        now = clock.now()
        new = Batch(
            id=ids.batch_id(), project=b.project, endpoint=b.endpoint, input_file_id=b.input_file_id,
            completion_window=window, status=BatchStatus.VALIDATING, created_at=now,
            expires_at=now + max(1, round((window_seconds(window) or 0) * self._window_scale)),
            metadata=req.metadata if req.metadata is not None else b.metadata,
            output_expires_after=b.output_expires_after, retried_from=b.id, retry_only=req.only,
        )
        stored = await self._store.insert_retry(new)
        self._wake()
        return stored

    async def recorded_results(self, who: Principal, batch_id: str) -> AsyncIterator[tuple[bool, bytes]]:
        """The results an unfinished batch has recorded so far, in line order: (went to the output file, line).
        For writing out what an interrupted `batchgate run` has; a finished batch's are in its files instead."""
        await self.get(who, batch_id)
        for spec in await self._store.chunk_specs(batch_id):
            for _, ok, data in sorted(await self._store.results_in(batch_id, spec.first_line, spec.last_line)):
                yield ok, data
