"""The finalize task: merge recorded results with the input into output and error files, enter a terminal status."""

from __future__ import annotations

import logging

from batchgate import clock, ids
from batchgate.blobs.base import BlobStore, BlobWriter
from batchgate.domain import limits
from batchgate.domain.batch import RequestCounts
from batchgate.domain.error_tally import ErrorTally
from batchgate.domain.files import OUTPUT_PURPOSE, StoredFile
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import BatchTask
from batchgate.errors import BlobMissing
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


async def finalize_batch(task: BatchTask, store: TaskStore, blobs: BlobStore) -> None:
    b = task.batch
    gen = task.generation
    if task.expiring and b.status in (BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING):
        target, missing_code, missing_msg = BatchStatus.EXPIRED, "batch_expired", EXPIRED_MESSAGE
    elif b.status is BatchStatus.CANCELLING:
        target, missing_code, missing_msg = BatchStatus.CANCELLED, "batch_cancelled", CANCELLED_MESSAGE
    else:
        if b.status is BatchStatus.IN_PROGRESS and not await store.enter_finalizing(b.id, gen, clock.now()):
            return
        target, missing_code, missing_msg = BatchStatus.COMPLETED, "internal_error", "The request has no result."

    out, err = _LazyFile(blobs), _LazyFile(blobs)
    total = completed = not_run = 0
    tally = ErrorTally()
    unreadable = False
    try:
        for spec in await store.chunk_specs(b.id):
            entries = {line: (ok, data) for line, ok, data in
                       await store.results_in(b.id, spec.first_line, spec.last_line)}
            # Only requests without a result need the input (for their custom_id): a batch whose input bytes are
            # gone still ends with every result it has.
            missing: set[int] = set()  # requests that never ran: written here with missing_code
            if len(entries) < spec.requests:
                try:
                    raw = await blobs.read_range(b.input_file_id, spec.byte_start, spec.byte_end)
                except BlobMissing as e:
                    if not unreadable:
                        log.warning("batch %s: %s The requests without a result are written with custom_id null.",
                                    b.id, e.message)
                    unreadable = True
                    numbers, exact = unread_lines(spec, entries)
                    missing = set(numbers)
                    for n in numbers:
                        entries[n] = (False, unread_result(n, spec, exact, b.input_file_id, missing_code,
                                                           missing_msg).data)
                else:
                    for line in split_lines(raw, spec.first_line, spec.byte_start):
                        if line.number not in entries and line.data.strip():
                            missing.add(line.number)
                            entries[line.number] = (False, error_result(
                                line.number, custom_id_of(line.data), missing_code, missing_msg).data)
            for number in sorted(entries):
                ok, data = entries[number]
                total += 1
                completed += ok
                await (out if ok else err).write_line(data)
                if number in missing:
                    not_run += 1
                    tally.add(missing_code, missing_msg)
                elif not ok:
                    tally.add(*error_of(data))
        await out.commit()
        await err.commit()
    except BaseException:
        await out.abort()
        await err.abort()
        raise

    files = [
        await _register(store, b.project, f, f"batch_{b.id}_{kind}.jsonl", b.output_expires_after)
        for f, kind in ((out, "output"), (err, "error"))
        if f.id is not None
    ]
    counts = RequestCounts(total, completed, total - completed, not_run)
    if await store.finish_batch(b.id, gen, target, clock.now(), out.id, err.id, counts, tally.counts()):
        log.info("batch %s %s: %d completed, %d failed", b.id, target.value, completed, total - completed)
        await store.drop_results(b.id)
        return
    # Someone changed the batch under us (cancelled while finalizing, or our lease was taken): undo.
    for f in files:
        await blobs.delete(f.id)
        await store.mark_purged(f.id)


async def _register(store: TaskStore, project: str, f: _LazyFile, name: str, expires_after: int | None) -> StoredFile:
    assert f.id is not None
    now = clock.now()
    seconds = expires_after if expires_after is not None else limits.OUTPUT_FILE_DEFAULT_EXPIRY
    stored = StoredFile(f.id, project, f.size, now, name, OUTPUT_PURPOSE, now + seconds)
    await store.insert_file(stored)
    return stored
