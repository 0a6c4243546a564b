"""Anthropic's Message Batches over batchgate's own batches. A create stores the inline requests as a batch
input file (each line targeting /v1/messages) and a batch with an `msgbatch_` id; from there the worker runs it
like any other (restart, exactly-once results, cancel and expiry alike), and the results are its output and error
files read as Anthropic's result lines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import orjson

from batchgate import clock, ids
from batchgate.domain.batch import Batch
from batchgate.domain.message_batch import DECLARED_KEY, result_line, unrun_result
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import BatchStatus
from batchgate.errors import InvalidRequest, NotFound
from batchgate.protocol.anthropic import CreateMessageBatch
from batchgate.protocol.requests import CreateFile
from batchgate.services.auth import Principal
from batchgate.services.files import FileService
from batchgate.store.base import BatchStore, Page

WINDOW = "24h"  # Anthropic's: a Message Batch ends at most 24 hours after it was created
WINDOW_SECONDS = 86_400
_BLOCK = 1 << 20  # bytes per block written to the input file and sent of the results


def _no_worker() -> None:
    pass


class MessageBatchService:
    def __init__(
        self, store: BatchStore, files: FileService, window_scale: float = 1.0,
        wake: Callable[[], None] | None = None,
    ) -> None:
        """`wake`: as BatchService's, called after a batch is created or cancelled."""
        self._store = store
        self._files = files
        self._window_scale = window_scale
        self._wake = wake or _no_worker

    async def create(self, who: Principal, req: CreateMessageBatch) -> Batch:
        batch_id = ids.message_batch_id()
        stored = await self._files.create(who, CreateFile(f"{batch_id}.jsonl", "batch"), _blocks(req.input_lines()))
        now = clock.now()
        batch = Batch(
            id=batch_id,
            project=who.project,
            endpoint=MESSAGES_ENDPOINT,
            input_file_id=stored.id,
            completion_window=WINDOW,
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + max(1, round(WINDOW_SECONDS * self._window_scale)),
            metadata={DECLARED_KEY: str(len(req.requests))},
        )
        await self._store.insert_batch(batch)
        self._wake()
        return batch

    async def get(self, who: Principal, batch_id: str) -> Batch:
        b = await self._store.get_batch(batch_id)
        if b is None or b.endpoint != MESSAGES_ENDPOINT or (b.project != who.project and not who.admin):
            raise NotFound(f"No message batch found with id '{batch_id}'.", param="message_batch_id")
        return b

    async def list(self, who: Principal, before: str | None, after: str | None, limit: int) -> Page[Batch]:
        """Newest first; the page just older than `after`, or just newer than `before`."""
        if before is not None and after is not None:
            raise InvalidRequest("Only one of before_id and after_id may be given.", param="before_id")
        return await self._store.list_batches(None if who.admin else who.project, after, limit,
                                              endpoint=MESSAGES_ENDPOINT, before=before)

    async def cancel(self, who: Principal, batch_id: str) -> Batch:
        await self.get(who, batch_id)
        b = await self._store.request_cancel(batch_id, clock.now())
        if b is None:
            raise NotFound(f"No message batch found with id '{batch_id}'.", param="message_batch_id")
        if b.status.terminal:
            raise InvalidRequest(f"Message batch '{batch_id}' has already ended and cannot be canceled.")
        self._wake()
        return b

    async def delete(self, who: Principal, batch_id: str) -> None:
        """Only an ended batch (as Anthropic); its input and result files go with it."""
        b = await self.get(who, batch_id)
        if not b.status.terminal or not await self._store.delete_batch(batch_id):
            raise InvalidRequest(
                f"Message batch '{batch_id}' cannot be deleted while it is processing; cancel it first."
            )
        for file_id in (b.input_file_id, b.output_file_id, b.error_file_id):
            if file_id is not None:
                try:
                    await self._files.delete(who, file_id)
                except NotFound:
                    pass  # deleted already through /v1/files

    async def results(self, who: Principal, batch_id: str) -> AsyncIterator[bytes]:
        """The result lines (JSONL) of an ended batch: its output file's, then its error file's, each as
        Anthropic's. A batch that ended without result files (failed, or cancelled or expired before it
        started) answers for each request of its input. Checks are made before the first byte is sent."""
        b = await self.get(who, batch_id)
        if not b.status.terminal:
            raise InvalidRequest(
                f"Message batch '{batch_id}' is still processing; its results are available once it has ended."
            )
        files = [f for f in (b.output_file_id, b.error_file_id) if f is not None]
        if files:
            streams = [(await self._files.content(who, f))[1] for f in files]
            return _convert(streams, lambda line: result_line(orjson.loads(line)))
        _, stream = await self._files.content(who, b.input_file_id)
        return _convert([stream], lambda line: unrun_result(str(orjson.loads(line).get("custom_id")), b))


async def _blocks(lines: Iterable[bytes]) -> AsyncIterator[bytes]:
    block = bytearray()
    for line in lines:
        block += line
        if len(block) >= _BLOCK:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)


async def _convert(streams: list[AsyncIterator[bytes]], convert: Callable[[bytes], object]) -> AsyncIterator[bytes]:
    """Each non-blank line of the streams, in order, converted and written as one JSON line."""
    out = bytearray()
    for stream in streams:
        rest = b""
        async for block in stream:
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.strip():
                    out += orjson.dumps(convert(line)) + b"\n"
            if len(out) >= _BLOCK:
                yield bytes(out)
                out.clear()
        if rest.strip():
            out += orjson.dumps(convert(rest)) + b"\n"
    if out:
        yield bytes(out)
