"""Which input lines a retry batch runs (POST /v1/batches/{id}/retry): the original batch's failed lines, or its
unfinished ones, picked when the retry is validated.

The retry reads the original's input file, so its chunks must hold only the picked lines: a chunk is a contiguous
byte range whose lines all run. The cutter is therefore cut wherever a request line that is not picked lies
between two picked ones; blank lines inside a run are skipped at execution as always. The chunks, the finalizer's
output and error files and `request_counts.total` then cover exactly the picked lines."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

from batchgate.domain.batch import Batch, RetryOnly
from batchgate.domain.validation import LineValidator
from batchgate.store.base import WorkQueue
from batchgate.worker.lines import LineView

if TYPE_CHECKING:  # validate.py imports this module
    from batchgate.worker.validate import ChunkCutter

Keep = Callable[[int], bool]


async def picked_lines(store: WorkQueue, b: Batch) -> Keep | None:
    """Whether a line of the input is one the retry `b` runs; None when its original batch is gone (deleted)."""
    if b.retried_from is None:
        return _all
    original = await store.get_batch(b.retried_from)
    if original is None:
        return None
    if b.retry_only is RetryOnly.FAILED:
        return (await store.recorded_lines(original.id, ok=False)).__contains__
    # Unfinished: the original's lines without a result. Only lines inside its chunks were its lines (a retry's
    # chunks cover only the lines it picked in turn).
    recorded = await store.recorded_lines(original.id)
    specs = await store.chunk_specs(original.id)
    firsts = [s.first_line for s in specs]
    lasts = [s.last_line for s in specs]

    def unfinished(n: int) -> bool:
        i = bisect.bisect_right(firsts, n) - 1
        return i >= 0 and n <= lasts[i] and n not in recorded

    return unfinished


def _all(n: int) -> bool:
    return True


def feed_picked(validator: LineValidator, cutter: ChunkCutter, lines: list[LineView], keep: Keep) -> None:
    """Validate and cut the picked lines among `lines` (consecutive lines of the file), closing the chunk at every
    request line that is not picked."""
    run: list[LineView] = []
    for line in lines:
        if keep(line[0]):
            run.append(line)
        elif bytes(line[3]).strip():
            if run:
                cutter.add_lines(validator.feed_lines(run))
                run = []
            cutter.cut()
    if run:
        cutter.add_lines(validator.feed_lines(run))
