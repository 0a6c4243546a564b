"""Which input lines a retry batch runs (POST /v1/batches/{id}/retry): the original batch's failed lines, or its
unfinished ones, picked when the retry is validated.

The original's error file says which: a line that never ran has the error code `batch_expired` or
`batch_cancelled` (unfinished), any other line there ran and failed (the recorded results are dropped once a batch
ends: its files are what it leaves). A retry of a retry reads its own error file, which holds only its own lines.
The picked custom_ids are matched against the input as it is read (custom_ids are unique in a batch); an error
line whose custom_id is null (its input was unreadable) cannot be matched and is not retried.

The retry reads the original's input file, so its chunks must hold only the picked lines: a chunk is a contiguous
byte range whose lines all run. The cutter is therefore cut wherever a request line that is not picked lies
between two picked ones; blank lines inside a run are skipped at execution as always. The chunks, the finalizer's
output and error files and `request_counts.total` then cover exactly the picked lines."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from batchgate.blobs.base import BlobStore, read_ahead
from batchgate.domain.batch import Batch, RetryOnly
from batchgate.domain.validation import LineValidator
from batchgate.errors import BlobMissing
from batchgate.store.base import TaskStore
from batchgate.worker.lines import LineView, stream_lines
from batchgate.worker.outcome import custom_id_of

if TYPE_CHECKING:  # validate.py imports this module
    from batchgate.worker.validate import ChunkCutter

Keep = Callable[[LineView], bool]
NEVER_RAN = frozenset({"batch_expired", "batch_cancelled"})


class NotRetryable(Exception):
    """The original batch, or the error file that says which of its lines to retry, is gone."""


async def picked_lines(store: TaskStore, blobs: BlobStore, b: Batch) -> Keep:
    """Whether an input line is one the retry `b` runs (raises NotRetryable when that cannot be known)."""
    original = await store.get_batch(b.retried_from or "")
    if original is None:
        raise NotRetryable(f"Batch {b.retried_from}, whose lines this batch retries, no longer exists.")
    picked: set[str] = set()
    if original.error_file_id is None:
        return _none
    if await store.get_file(original.error_file_id) is None:
        raise NotRetryable(f"The error file {original.error_file_id} of batch {original.id}, which says which of "
                           "its lines to retry, was deleted.")
    never_ran = b.retry_only is RetryOnly.UNFINISHED
    try:
        async with contextlib.aclosing(stream_lines(read_ahead(blobs.read(original.error_file_id)))) as blocks:
            async for lines in blocks:
                for line in lines:
                    if not bytes(line[3]).strip():
                        continue
                    entry = orjson.loads(line[3])
                    error = entry.get("error")
                    code = error.get("code") if isinstance(error, dict) else None
                    if isinstance(entry.get("custom_id"), str) and (code in NEVER_RAN) == never_ran:
                        picked.add(entry["custom_id"])
    except BlobMissing as e:
        raise NotRetryable(f"The error file of batch {original.id} cannot be read: {e.message}") from None

    def keep(line: LineView) -> bool:
        return custom_id_of(bytes(line[3])) in picked

    return keep


def _none(line: LineView) -> bool:
    return False


def feed_picked(validator: LineValidator, cutter: ChunkCutter, lines: list[LineView], keep: Keep) -> None:
    """Validate and cut the picked lines among `lines` (consecutive lines of the file), closing the chunk at every
    request line that is not picked."""
    run: list[LineView] = []
    for line in lines:
        if keep(line):
            run.append(line)
        elif bytes(line[3]).strip():
            if run:
                cutter.add_lines(validator.feed_lines(run))
                run = []
            cutter.cut()
    if run:
        cutter.add_lines(validator.feed_lines(run))
