"""The validate task: check an input file line by line, then cut it into claimable chunks (or fail the batch)."""

from __future__ import annotations

import asyncio
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
from batchgate.worker.lines import stream_lines

log = logging.getLogger("batchgate.worker")

CHUNK_MAX_BYTES = 8 << 20


class ChunkCutter:
    """Groups consecutive request lines into chunks of at most `size` requests (and CHUNK_MAX_BYTES)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.chunks: list[ChunkSpec] = []
        self._first = self._last = self._start = self._end = self._count = 0

    def add(self, number: int, start: int, end: int) -> None:
        if self._count and (self._count >= self._size or end - self._start > CHUNK_MAX_BYTES):
            self._close()
        if not self._count:
            self._first, self._start = number, start
        self._last, self._end = number, end
        self._count += 1

    def finish(self) -> list[ChunkSpec]:
        if self._count:
            self._close()
        return self.chunks

    def _close(self) -> None:
        self.chunks.append(
            ChunkSpec(len(self.chunks), self._first, self._last, self._start, self._end, self._count)
        )
        self._count = 0


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
                              limits)
    if limits.file_too_large(f.bytes):
        # Too large to accept whatever it holds: say so without reading it.
        validator.requests = 1
        await store.fail_batch(b.id, task.generation, validator.finish(f.bytes), clock.now())
        return
    started = time.perf_counter()
    cutter = ChunkCutter(chunk_size)
    async for lines in stream_lines(read_ahead(blobs.read(f.id))):
        for line in lines:
            if validator.feed(line.number, line.data):
                cutter.add(line.number, line.start, line.end)
        await asyncio.sleep(0)  # let the API breathe between blocks
    if validator.suspects():
        await _confirm_suspects(validator, blobs, f.id)
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


async def _confirm_suspects(validator: LineValidator, blobs: BlobStore, file_id: str) -> None:
    """Read the file again up to the last line whose custom_id may repeat another (domain/custom_ids.py):
    only a file with a repeated custom_id, or a hash collision, gets a second read."""
    suspects = validator.suspects()
    i = 0
    async with contextlib.aclosing(stream_lines(read_ahead(blobs.read(file_id)))) as blocks:
        async for lines in blocks:
            for number, _, _, data in lines:
                if number == suspects[i]:
                    validator.confirm(number, data)
                    i += 1
                    if i == len(suspects):
                        return
            await asyncio.sleep(0)
