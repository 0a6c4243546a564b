"""The finalize task: merge recorded results with the input into output and error files, enter a terminal status."""

from __future__ import annotations

import logging
from typing import NamedTuple

from batchgate import clock, ids
from batchgate.blobs.base import BlobStore, BlobWriter
from batchgate.domain import limits
from batchgate.domain.batch import Batch, RequestCounts
from batchgate.domain.error_tally import ErrorTally
from batchgate.domain.files import OUTPUT_PURPOSE
from batchgate.domain.results_feed import RESULTS_KEPT_SECONDS
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import BatchTask
from batchgate.errors import BlobMissing
from batchgate.services.auth import Principal
from batchgate.services.files import FileService
from batchgate.store.base import TaskStore
from batchgate.worker.lines import split_lines
from batchgate.worker.outcome import CANCELLED_MESSAGE, EXPIRED_MESSAGE, custom_id_of, error_of, error_result
from batchgate.worker.unread import unread_lines, unread_result

log = logging.getLogger("batchgate.worker")


class _LazyFile:
    """A file that exists only if at least one line is written to it."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self.id: str | None = None
        self._writer: BlobWriter | None = None
        self.size = 0

    async def write_line(self, data: bytes) -> None:
        if self._writer is None:
            self.id = ids.file_id()
            self._writer = self._blobs.writer(self.id)
        await self._writer.write(data + b"\n")

    async def commit(self) -> None:
        if self._writer is not None:
            self.size = await self._writer.commit()

    async def abort(self) -> None:
        if self._writer is not None:
            await self._writer.abort()


class Finalize:
    """The finalize task, built once per worker with what it needs; `run` takes one claimed batch task."""

    def __init__(self, store: TaskStore, blobs: BlobStore, files: FileService) -> None:
        self._store = store
        self._blobs = blobs
        self._files = files

    async def run(self, task: BatchTask) -> None:
        b = task.batch
        gen = task.generation
        if task.expiring and b.status in (BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING):
            target, missing = BatchStatus.EXPIRED, _Missing("batch_expired", EXPIRED_MESSAGE)
        elif b.status is BatchStatus.CANCELLING:
            target, missing = BatchStatus.CANCELLED, _Missing("batch_cancelled", CANCELLED_MESSAGE)
        else:
            if b.status is BatchStatus.IN_PROGRESS and not await self._store.enter_finalizing(b.id, gen, clock.now()):
                return
            target, missing = BatchStatus.COMPLETED, _Missing("internal_error", "The request has no result.")

        out, err = _LazyFile(self._blobs), _LazyFile(self._blobs)
        try:
            counts, tally = await self._merge(b, gen, missing, out, err)
            await out.commit()
            await err.commit()
        except BaseException:
            await out.abort()
            await err.abort()
            raise

        # An output file's expiry counts from when it is written; without one asked for, the default for outputs.
        expires_after = b.output_expires_after
        if expires_after is None:
            expires_after = limits.OUTPUT_FILE_DEFAULT_EXPIRY
        owner = Principal(b.project)
        files = [
            await self._files.register(owner, f.id, f"batch_{b.id}_{kind}.jsonl", OUTPUT_PURPOSE, f.size,
                                       expires_after)
            for f, kind in ((out, "output"), (err, "error"))
            if f.id is not None
        ]
        if await self._store.finish_batch(b.id, gen, target, clock.now(), out.id, err.id, counts, tally.counts()):
            log.info("batch %s %s: %d completed, %d failed", b.id, target.value, counts.completed, counts.failed)
            # Followers read the end of the batch from its results (GET /v1/batches/{id}/results): they stay a
            # while, and a chore drops them (worker/chores.py).
            await self._store.keep_results(b.id, clock.now() + RESULTS_KEPT_SECONDS)
            return
        # Someone changed the batch under us (cancelled while finalizing, or our lease was taken): undo.
        for stored in files:
            await self._blobs.delete(stored.id)
            await self._store.mark_purged(stored.id)

    async def _merge(
        self, b: Batch, gen: int, missing: _Missing, out: _LazyFile, err: _LazyFile
    ) -> tuple[RequestCounts, ErrorTally]:
        """Write every request's line, in input order, to `out` or `err`: its result, or `missing`'s error. The
        lines written for requests without a result are recorded too, before the batch ends, so that a follower
        of its results gets every line of the files."""
        store = self._store
        total = completed = not_run = 0
        tally = ErrorTally()
        unreadable = False
        for spec in await store.chunk_specs(b.id):
            entries = {line: (ok, data) for line, ok, data in
                       await store.results_in(b.id, spec.first_line, spec.last_line)}
            # Only requests without a result need the input (for their custom_id): a batch whose input bytes are
            # gone still ends with every result it has.
            never_ran: set[int] = set()  # requests that never ran: written here with missing.code
            if len(entries) < spec.requests:
                try:
                    raw = await self._blobs.read_range(b.input_file_id, spec.byte_start, spec.byte_end)
                except BlobMissing as e:
                    if not unreadable:
                        log.warning("batch %s: %s The requests without a result are written with custom_id null.",
                                    b.id, e.message)
                    unreadable = True
                    numbers, exact = unread_lines(spec, entries)
                    never_ran = set(numbers)
                    for n in numbers:
                        entries[n] = (False, unread_result(n, spec, exact, b.input_file_id, missing.code,
                                                           missing.message).data)
                else:
                    for line in split_lines(raw, spec.first_line, spec.byte_start):
                        if line.number not in entries and line.data.strip():
                            never_ran.add(line.number)
                            entries[line.number] = (False, error_result(
                                line.number, custom_id_of(line.data), missing.code, missing.message).data)
            if never_ran:
                await store.record_final_lines(b.id, gen, [(n, entries[n][1]) for n in sorted(never_ran)])
            for number in sorted(entries):
                ok, data = entries[number]
                total += 1
                completed += ok
                await (out if ok else err).write_line(data)
                if number in never_ran:
                    not_run += 1
                    tally.add(missing.code, missing.message)
                elif not ok:
                    code, message = error_of(data)
                    # a line an earlier run of this task recorded for a request that never ran (then failed)
                    not_run += (code, message) == (missing.code, missing.message)
                    tally.add(code, message)
        return RequestCounts(total, completed, total - completed, not_run), tally


class _Missing(NamedTuple):
    """The error written for a request that has no result when the batch ends."""

    code: str
    message: str
