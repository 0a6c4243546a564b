"""The validate task: check an input file line by line, then cut it into claimable chunks (or fail the batch)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time

from batchgate import clock
from batchgate.blobs.base import BlobStore, read_ahead
from batchgate.domain.batch import BatchError
from batchgate.domain.limits import OPENAI_LIMITS, BatchLimits
from batchgate.domain.validation import LineValidator
from batchgate.domain.work import BatchTask, ChunkSpec
from batchgate.services.tokens import PromptTokenCounter
from batchgate.store.base import Store
from batchgate.upstream.router import Router
from batchgate.worker.lines import LineView, stream_lines

log = logging.getLogger("batchgate.worker")

CHUNK_MAX_BYTES = 8 << 20


class ChunkCutter:
    """Groups consecutive request lines into chunks of at most `size` requests and `max_bytes` (a single line
    larger than that is a chunk of its own)."""

    def __init__(self, size: int, max_bytes: int = CHUNK_MAX_BYTES) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self.chunks: list[ChunkSpec] = []
        self._first = self._last = self._start = self._end = self._count = 0

    def add_lines(self, lines: list[LineView]) -> None:
        """Add request lines (in file order), a run at a time: a million lines make only 4,000 chunks, and a
        step per line cost as much as a tenth of validating them."""
        i, n = 0, len(lines)
        while i < n:
            if not self._count:
                self._first, self._start, self._last, self._end = lines[i][0], lines[i][1], lines[i][0], lines[i][2]
                self._count, i = 1, i + 1
            hi = min(n, i + self._size - self._count)
            limit = self._start + self._max_bytes
            j = hi if hi == i or lines[hi - 1][2] <= limit else bisect.bisect_right(lines, limit, i, hi, key=_end)
            if j > i:
                self._last, self._end = lines[j - 1][0], lines[j - 1][2]
                self._count, i = self._count + j - i, j
            if i < n:  # the next line doesn't fit
                self._close()

    def finish(self) -> list[ChunkSpec]:
        if self._count:
            self._close()
        return self.chunks

    def _close(self) -> None:
        self.chunks.append(
            ChunkSpec(len(self.chunks), self._first, self._last, self._start, self._end, self._count)
        )
        self._count = 0


def _end(line: LineView) -> int:
    return line[2]


async def validate_batch(
    task: BatchTask, store: Store, blobs: BlobStore, router: Router, chunk_size: int, max_errors: int,
    token_limit: int | None = None, counter: PromptTokenCounter | None = None,
    limits: BatchLimits = OPENAI_LIMITS,
) -> None:
    b = task.batch
    f = await store.get_file(b.input_file_id)
    problem = None
    if f is None or f.project != b.project or f.expired(clock.now()):
        problem = f"Cannot find file {b.input_file_id}, or project {b.project} does not have access to it."
    elif f.purpose != "batch":
        problem = f"File {f.id} has purpose '{f.purpose}'; a batch input file must be uploaded with purpose 'batch'."
    if f is None or problem is not None:
        await store.fail_batch(b.id, task.generation, [BatchError("invalid_request", problem or "", "file_id")],
                               clock.now())
        return
    validator = LineValidator(b.endpoint, router.check_model, max_errors,
                              counter.count_body if token_limit is not None and counter is not None else None,
                              limits=limits)
    if limits.file_too_large(f.bytes):
        # Too large to accept whatever it holds: say so without reading it.
        validator.requests = 1
        await store.fail_batch(b.id, task.generation, validator.finish(f.bytes), clock.now())
        return
    started = time.perf_counter()
    cutter = ChunkCutter(chunk_size)
    async for lines in stream_lines(read_ahead(blobs.read(f.id))):
        cutter.add_lines(validator.feed_lines(lines))
        await asyncio.sleep(0)  # let the API breathe between blocks
    if validator.repeats_possible():
        await _read_again(validator, blobs, f.id)
    errors = validator.finish(f.bytes)
    if errors:
        log.info("batch %s failed validation with %d error(s)", b.id, len(errors))
        await store.fail_batch(b.id, task.generation, errors, clock.now())
        return
    if token_limit is not None and validator.model is not None:
        queued = await store.enqueued_tokens(b.project, validator.model)
        if queued + validator.prompt_tokens > token_limit:
            await store.fail_batch(b.id, task.generation, [BatchError(
                "token_limit_exceeded",
                f"Enqueued token limit reached for {validator.model} in project {b.project}. Limit: "
                f"{token_limit} enqueued tokens; {queued} are enqueued and this batch needs "
                f"{validator.prompt_tokens}. Please try again once some in_progress batches have been completed.",
            )], clock.now())
            return
    chunks = cutter.finish()
    await store.start_batch(b.id, task.generation, chunks, validator.model, clock.now(), validator.prompt_tokens)
    log.info("batch %s validated: %d requests in %d chunks (%d bytes in %.2f s)", b.id, validator.requests,
             len(chunks), f.bytes, time.perf_counter() - started)


async def _read_again(validator: LineValidator, blobs: BlobStore, file_id: str) -> None:
    """Two custom_ids share a hash (domain/custom_ids.py): read the file again, up to the last line with such an
    id, for the validator to compare the real strings. Only a file with a repeated custom_id (or one collision
    in tens of millions of files) is read twice."""
    async with contextlib.aclosing(stream_lines(read_ahead(blobs.read(file_id)))) as blocks:
        async for lines in blocks:
            if not validator.recheck(lines):
                return
            await asyncio.sleep(0)
