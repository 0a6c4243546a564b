"""Running one claimed chunk: skip lines already recorded, execute the rest, record, mark the chunk done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, NamedTuple

import orjson

from batchgate import clock, logs
from batchgate.blobs.base import BlobStore
from batchgate.domain.prefix import NO_PREFIX, prefix_key
from batchgate.domain.work import ChunkClaim
from batchgate.errors import BatchgateError, BlobMissing
from batchgate.store.base import WorkQueue
from batchgate.upstream.router import Router
from batchgate.worker.buffer import LeaseLost, ResultBuffer, ResultWriter
from batchgate.worker.drain import Drain
from batchgate.worker.execute import RequestExecutor
from batchgate.worker.failures import MAX_CHUNK_FAILURES, chunk_retry_delay, describe, first, has
from batchgate.worker.lines import split_lines
from batchgate.worker.notices import Notices
from batchgate.worker.outcome import custom_id_of, error_result
from batchgate.worker.unread import unread_lines, unread_result

log = logging.getLogger("batchgate.worker")


class Todo(NamedTuple):
    """A request of the chunk still to run."""

    line: int
    custom_id: str
    body: dict[str, Any]
    key: bytes  # prefix_key of the body: requests sharing a prompt prefix go out together


class ChunkTask:
    """The chunk task, built once per worker with what it needs; `run` takes one claimed chunk. A chunk that
    fails is retried with backoff (the wait is in its row, for any worker) and given up after
    MAX_CHUNK_FAILURES; one stopped or whose lease was lost is left for the next owner."""

    def __init__(
        self, store: WorkQueue, blobs: BlobStore, router: Router, executor: RequestExecutor,
        prefix_grouping: bool = True, notices: Notices | None = None,
    ) -> None:
        self._prefix_grouping = prefix_grouping
        self._store = store
        self._writer = ResultWriter(store)  # one group commit for all the chunks of this worker
        self._blobs = blobs
        self._router = router
        self._executor = executor
        self._notices = notices or Notices(log)

    async def run(self, claim: ChunkClaim, drain: Drain | None = None) -> None:
        """Run the chunk; `drain` (started by the heartbeat when the batch is paused) stops what was not sent."""
        logs.batch_id.set(claim.batch_id)  # this task's log lines (and its request tasks') name the batch
        drain = drain or Drain()
        try:
            await self._execute(claim, drain)
        except asyncio.CancelledError:
            log.info("%s chunk %d stopped", claim.batch_id, claim.spec.index)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_chunk(claim.batch_id, claim.spec.index, claim.generation))
        except Exception as e:
            if has(e, LeaseLost):
                log.warning("%s chunk %d: lease lost to another worker", claim.batch_id, claim.spec.index)
            else:
                await self._failed(claim, e)
        finally:
            drain.close()  # it and the chunk's request tasks form a cycle until then

    async def _failed(self, claim: ChunkClaim, e: Exception) -> None:
        batch_id, index, failures = claim.batch_id, claim.spec.index, claim.failures + 1
        what = describe(e)
        if failures >= MAX_CHUNK_FAILURES:
            self._notices.log(logging.ERROR, batch_id, "chunk gave up",
                              "%s chunk %d failed %d times (%s); failing the requests it has not run",
                              batch_id, index, failures, what)
            try:
                await self.give_up(claim, "chunk_failed", f"This request was not run: its part of the "
                                   f"batch failed {failures} times ({what}).")
                return
            except Exception:
                log.debug("%s chunk %d: could not fail its requests yet", batch_id, index, exc_info=True)
        delay = chunk_retry_delay(failures)
        # One line per batch and kind of failure; the traceback only where the failure is not one of ours.
        self._notices.log(logging.WARNING, batch_id, type(first(e)).__name__,
                          "%s chunk %d failed (%s); retrying it in %.0f s, %d failures at most", batch_id, index,
                          what, delay, MAX_CHUNK_FAILURES,
                          exc_info=None if isinstance(first(e), BatchgateError) else e)
        with contextlib.suppress(Exception):  # if even this fails, the lease runs out and the chunk is retried
            await self._store.chunk_failed(batch_id, index, claim.generation, clock.now_f() + delay)

    async def _execute(self, claim: ChunkClaim, drain: Drain) -> None:
        spec = claim.spec
        try:
            raw = await self._blobs.read_range(claim.input_file_id, spec.byte_start, spec.byte_end)
        except BlobMissing as e:
            # Lost for good (a deleted file's bytes are kept while a batch reads them: only an operator removes
            # them): the requests fail once, and the batch finishes with everything else it has.
            self._notices.log(logging.WARNING, claim.batch_id, "input_file_unavailable",
                              "%s: %s The requests of its chunks not yet run fail with input_file_unavailable.",
                              claim.batch_id, e.message)
            await self._fail_rest(claim, None, "input_file_unavailable",
                                  f"This request was not run: the contents of input file {e.key} are missing "
                                  "from storage.")
            return
        done = await self._store.done_lines(claim.batch_id, spec.first_line, spec.last_line)
        todo: list[Todo] = []
        unreadable: list[int] = []
        for line in split_lines(raw, spec.first_line, spec.byte_start):
            if line.number in done or not line.data.strip():
                continue
            try:
                obj = orjson.loads(line.data)  # validated before the chunk existed
                custom_id, body = obj["custom_id"], obj["body"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                # Cannot happen for a validated line; if it ever does, it is one error line, not a chunk that
                # fails and is retried forever.
                unreadable.append(line.number)
                continue
            key = prefix_key(claim.endpoint, body) if self._prefix_grouping else NO_PREFIX
            todo.append(Todo(line.number, custom_id, body, key))
        del raw
        if done:
            log.info("%s chunk %d resumed: %d already recorded, %d to run",
                     claim.batch_id, spec.index, len(done), len(todo))
        tally = [0, 0]  # retries, failed results: logged so that a slow batch says why
        async with self._writer.buffer(claim) as buffer:
            for number in unreadable:
                log.error("%s line %d could not be read at execution", claim.batch_id, number)
                buffer.add(error_result(number, f"line-{number}", "invalid_json_line",
                                        "This line could not be read when it was executed."))
            async with asyncio.TaskGroup() as tg:
                for request in todo:
                    drain.add(tg.create_task(self._one(buffer, claim, request, tally, drain)))
        if drain.stopped:
            # Paused: what was sent is recorded (the buffer flushed it); the rest runs when the batch resumes.
            log.info("%s chunk %d paused: %d requests not sent", claim.batch_id, spec.index, drain.stopped)
            await self._store.release_chunk(claim.batch_id, spec.index, claim.generation)
            return
        await self._store.complete_chunk(claim.batch_id, spec.index, claim.generation, clock.now())
        if tally[0] or tally[1]:
            log.info("%s chunk %d done: %d requests, %d upstream retries, %d failed",
                     claim.batch_id, spec.index, len(todo), tally[0], tally[1])

    async def give_up(self, claim: ChunkClaim, code: str, message: str) -> None:
        """Fail every request of the chunk that has no result yet, and mark the chunk done."""
        spec = claim.spec
        raw: bytes | None
        try:
            raw = await self._blobs.read_range(claim.input_file_id, spec.byte_start, spec.byte_end)
        except BatchgateError:
            raw = None  # storage down or the bytes gone: these requests' custom_ids are unknown
        await self._fail_rest(claim, raw, code, message)

    async def _fail_rest(self, claim: ChunkClaim, raw: bytes | None, code: str, message: str) -> None:
        spec = claim.spec
        done = await self._store.done_lines(claim.batch_id, spec.first_line, spec.last_line)
        async with self._writer.buffer(claim) as buffer:
            if raw is None:
                numbers, exact = unread_lines(spec, done)
                for number in numbers:
                    buffer.add(unread_result(number, spec, exact, claim.input_file_id, code, message))
            else:
                for line in split_lines(raw, spec.first_line, spec.byte_start):
                    if line.number not in done and line.data.strip():
                        buffer.add(error_result(line.number, custom_id_of(line.data), code, message))
        await self._store.complete_chunk(claim.batch_id, spec.index, claim.generation, clock.now())

    async def _one(
        self, buffer: ResultBuffer, claim: ChunkClaim, request: Todo, tally: list[int], drain: Drain
    ) -> None:
        line, custom_id, body, key = request
        model = body.get("model")
        route = self._router.resolve(model) if isinstance(model, str) else None
        if route is None:
            result = error_result(line, custom_id, "model_not_found",
                                  f"No upstream is configured for model '{model}'.")
            buffer.add(result)
        else:
            # The executor hands the result to the buffer while still holding its slot at the upstream's gate.
            result = await self._executor.run(drain.route(route), claim.endpoint, line, custom_id, body, key,
                                              buffer.record, claim.batch_id)
        tally[0] += result.retries
        tally[1] += not result.ok
