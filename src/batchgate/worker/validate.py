"""The validate task: check an input file line by line, then cut it into claimable chunks (or fail the batch)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from dataclasses import dataclass

from batchgate import clock
from batchgate.blobs.base import BlobStore, read_ahead
from batchgate.domain.batch import BatchError
from batchgate.domain.limits import OPENAI_LIMITS, BatchLimits
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.validation import LineValidator
from batchgate.domain.work import BatchTask, ChunkSpec
from batchgate.errors import BlobMissing
from batchgate.services.tokens import PromptTokenCounter
from batchgate.store.base import TaskStore
from batchgate.upstream.router import Router
from batchgate.worker.lines import LineView, stream_lines
from batchgate.worker.retry_lines import Keep, NotRetryable, feed_picked, picked_lines

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
        """Add request lines (in file order), a run at a time: a million lines make 4,000 chunks, and a step
        per line cost a tenth of validating them."""
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

    def cut(self) -> None:
        """Close the chunk being filled: the next line starts a new one (a retry's runs of picked lines)."""
        if self._count:
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


NO_LIMITS = BatchLimits(0, 0, 0)


@dataclass(frozen=True, slots=True)
class ValidateRules:
    """What a batch's input is checked against and how it is cut (from the worker's settings)."""

    chunk_size: int
    max_errors: int
    token_limit: int | None = None  # enqueued prompt tokens per project and model
    limits: BatchLimits = OPENAI_LIMITS


class Validate:
    """The validate task, built once per worker with what it needs; `run` takes one claimed batch task."""

    def __init__(self, store: TaskStore, blobs: BlobStore, router: Router, rules: ValidateRules) -> None:
        self._store = store
        self._blobs = blobs
        self._router = router
        self._rules = rules
        self._counter = PromptTokenCounter() if rules.token_limit is not None else None

    async def run(self, task: BatchTask) -> None:
        store, blobs, router, rules = self._store, self._blobs, self._router, self._rules
        token_limit, counter, limits = rules.token_limit, self._counter, rules.limits
        b = task.batch
        if b.endpoint == MESSAGES_ENDPOINT:
            limits = NO_LIMITS  # a Message Batch's own limits (Anthropic's) were checked when it was created
        # The file as it was when the batch was created: deleted or expired since, it is read all the same (its
        # bytes are kept until the batch ends); deleted or expired before, it is missing.
        f = await store.input_file(b.id)
        problem = None
        if f is None or f.project != b.project or f.expired(b.created_at):
            problem = f"Cannot find file {b.input_file_id}, or project {b.project} does not have access to it."
        elif f.purpose != "batch":
            problem = (f"File {f.id} has purpose '{f.purpose}'; a batch input file must be uploaded with purpose "
                       "'batch'.")
        if f is None or problem is not None:
            await store.fail_batch(b.id, task.generation, [BatchError("invalid_request", problem or "", "file_id")],
                                   clock.now())
            return
        validator = LineValidator(b.endpoint, router.check_model, rules.max_errors,
                                  counter.count_body if token_limit is not None and counter is not None else None,
                                  limits=limits, check_endpoint=lambda model: router.check_endpoint(model, b.endpoint))
        if limits.file_too_large(f.bytes):
            # Too large to accept whatever it holds: say so without reading it.
            validator.requests = 1
            await store.fail_batch(b.id, task.generation, validator.finish(f.bytes), clock.now())
            return
        keep: Keep = _all
        if b.retried_from is not None:
            try:
                keep = await picked_lines(store, blobs, b)
            except NotRetryable as e:
                await store.fail_batch(b.id, task.generation, [BatchError("invalid_request", str(e), "retried_from")],
                                       clock.now())
                return
        started = time.perf_counter()
        cutter = ChunkCutter(rules.chunk_size)
        try:
            async for lines in stream_lines(read_ahead(blobs.read(f.id))):
                if b.retried_from is None:
                    cutter.add_lines(validator.feed_lines(lines))
                else:
                    feed_picked(validator, cutter, lines, keep)
                await asyncio.sleep(0)  # let the API breathe between blocks
            if validator.repeats_possible():
                await _read_again(validator, blobs, f.id, keep)
        except BlobMissing as e:
            log.warning("batch %s: %s", b.id, e.message)
            await store.fail_batch(b.id, task.generation, [BatchError("input_file_unavailable", e.message,
                                                                      "input_file_id")], clock.now())
            return
        errors = validator.finish(f.bytes)
        if b.retried_from is not None and validator.requests == 0:
            errors = [BatchError("nothing_to_retry", f"Batch {b.retried_from} has no {b.retry_only} lines to retry.")]
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


def _all(line: LineView) -> bool:
    return True


async def _read_again(validator: LineValidator, blobs: BlobStore, file_id: str, keep: Keep) -> None:
    """Two custom_ids share a hash (domain/custom_ids.py): read the file again, up to the last line with such an
    id, for the validator to compare the real strings. Only a file with a repeated custom_id (or one collision
    in tens of millions of files) is read twice."""
    async with contextlib.aclosing(stream_lines(read_ahead(blobs.read(file_id)))) as blocks:
        async for lines in blocks:
            if not validator.recheck([line for line in lines if keep(line)]):
                return
            await asyncio.sleep(0)
