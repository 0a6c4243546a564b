"""Creating, reading, listing and cancelling batches. Execution is the worker's: this only writes state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from batchgate import clock, ids
from batchgate.domain import limits
from batchgate.domain.batch import ENDPOINTS, Batch, window_seconds
from batchgate.domain.status import BatchStatus
from batchgate.errors import Conflict, InvalidValue, NotFound
from batchgate.protocol import params
from batchgate.services.auth import Principal
from batchgate.store.base import BatchStore, Page


class BatchService:
    def __init__(self, store: BatchStore, window_scale: float = 1.0) -> None:
        self._store = store
        self._window_scale = window_scale

    async def create(self, who: Principal, body: dict[str, Any]) -> Batch:
        input_file_id = params.require_str(body, "input_file_id")
        endpoint = params.require_str(body, "endpoint")
        if endpoint not in ENDPOINTS:
            allowed = ", ".join(f"'{e}'" for e in ENDPOINTS)
            raise InvalidValue(f"Invalid value: '{endpoint}'. Supported values are: {allowed}.", param="endpoint")
        window = params.require_str(body, "completion_window")
        seconds = window_seconds(window)
        if seconds is None or not limits.MIN_WINDOW_SECONDS <= seconds <= limits.MAX_WINDOW_SECONDS:
            raise InvalidValue(
                f"Invalid value: '{window}'. Supported values are: '24h' (or any whole number of hours or days "
                "from '1h' to '7d').",
                param="completion_window",
            )
        metadata = params.metadata(body.get("metadata"))
        output_expiry = params.expires_after(body.get("output_expires_after"), "output_expires_after")
        now = clock.now()
        batch = Batch(
            id=ids.batch_id(),
            project=who.project,
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=window,
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + max(1, round(seconds * self._window_scale)),
            metadata=metadata,
            output_expires_after=output_expiry,
        )
        await self._store.insert_batch(batch)
        return batch

    async def get(self, who: Principal, batch_id: str) -> Batch:
        b = await self._store.get_batch(batch_id)
        if b is None or (b.project != who.project and not who.admin):
            raise NotFound(f"No batch found with id '{batch_id}'.", param="id")
        return b

    async def list(
        self, who: Principal, after: str | None, limit: int, status: BatchStatus | None = None
    ) -> Page[Batch]:
        """Newest first; only those in `status` when given (the dashboard's filter)."""
        return await self._store.list_batches(None if who.admin else who.project, after, limit, status)

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
        return b

    async def recorded_results(self, who: Principal, batch_id: str) -> AsyncIterator[tuple[bool, bytes]]:
        """The results an unfinished batch has recorded so far, in line order: (went to the output file, line).
        For writing out what an interrupted `batchgate run` has; a finished batch's are in its files instead."""
        await self.get(who, batch_id)
        for spec in await self._store.chunk_specs(batch_id):
            for _, ok, data in sorted(await self._store.results_in(batch_id, spec.first_line, spec.last_line)):
                yield ok, data
