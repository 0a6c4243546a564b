"""The finalize task: merge recorded results with the input into output and error files, enter a terminal status."""

from __future__ import annotations

import logging

import orjson

from batchgate import clock, ids
from batchgate.blobs.base import BlobStore, BlobWriter
from batchgate.domain import limits
from batchgate.domain.batch import RequestCounts
from batchgate.domain.error_tally import ErrorTally
from batchgate.domain.files import OUTPUT_PURPOSE, StoredFile
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import BatchTask
from batchgate.store.base import Store
from batchgate.worker.lines import split_lines
from batchgate.worker.outcome import CANCELLED_MESSAGE, EXPIRED_MESSAGE, error_of, error_result

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


async def finalize_batch(task: BatchTask, store: Store, blobs: BlobStore) -> None:
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
    try:
        for spec in await store.chunk_specs(b.id):
            results = {line: (ok, data) for line, ok, data in
                       await store.results_in(b.id, spec.first_line, spec.last_line)}
            raw = await blobs.read_range(b.input_file_id, spec.byte_start, spec.byte_end)
            for line in split_lines(raw, spec.first_line, spec.byte_start):
                if not line.data.strip():
                    continue
                total += 1
                found = results.get(line.number)
                if found is None:
                    custom_id = orjson.loads(line.data)["custom_id"]
                    await err.write_line(error_result(line.number, custom_id, missing_code, missing_msg).data)
                    not_run += 1
                    tally.add(missing_code, missing_msg)
                elif found[0]:
                    completed += 1
                    await out.write_line(found[1])
                else:
                    await err.write_line(found[1])
                    tally.add(*error_of(found[1]))
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
        await store.delete_file(f.id)
        await blobs.delete(f.id)


async def _register(store: Store, project: str, f: _LazyFile, name: str, expires_after: int | None) -> StoredFile:
    assert f.id is not None
    now = clock.now()
    seconds = expires_after if expires_after is not None else limits.OUTPUT_FILE_DEFAULT_EXPIRY
    stored = StoredFile(f.id, project, f.size, now, name, OUTPUT_PURPOSE, now + seconds)
    await store.insert_file(stored)
    return stored
