"""Fenced group commit of results, one per worker: a flush starts as soon as a result arrives (but not sooner
than GATHER_SECONDS after the one before), and whatever arrives while it runs or waits goes into the next one,
from every chunk the worker runs. Under load one transaction carries many results; at a crash at most the
results of one transaction's duration and the gather are lost (and sent again), not a timer's worth.

One group commit for the worker, not one per chunk: the gate admits the batches of a project round robin, one
request each, so with ten batches running the answers spread over ten chunks or more. A commit per chunk then
carried a tenth of the results, ten times as often; and what a SQLite commit costs is the pages it writes to
the WAL, a leaf of `results` and of its seq index per batch touched, so ten small commits wrote about as much
as ten large ones. 10 batches of 50,000 ran at 0.67 of the throughput of one alone. Against a fast upstream
commits came every millisecond or two with a few results each, a page or two per result once they were spread
over ten batches: the short gather makes each carry a few per batch, whatever the number of batches.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

from batchgate.domain.work import ChunkClaim, RequestResult, ResultGroup
from batchgate.store.base import WorkQueue

GATHER_SECONDS = 0.02  # a flush starts at least this long after the one before (a request holds its slot meanwhile)

_Item = tuple[RequestResult, asyncio.Future[None] | None]


class LeaseLost(Exception):
    """Another worker owns this chunk now; our results are refused and we must stop."""


class ResultWriter:
    """The worker's group commit. Each chunk writes through a `ResultBuffer` of its own; a flush, whichever
    buffer asks for it, records what every buffer holds in one call (`record_results_of`: one transaction on
    SQLite), each chunk fenced by its own claim's generation."""

    def __init__(self, store: WorkQueue, gather: float = GATHER_SECONDS) -> None:
        self._store = store
        self._gather = gather
        self._last = -math.inf  # loop time of the last flush's start
        self._lock = asyncio.Lock()
        self._dirty: dict[ResultBuffer, None] = {}  # buffers holding results, in the order they got their first

    def buffer(self, claim: ChunkClaim) -> ResultBuffer:
        """`async with writer.buffer(claim) as buffer`: the results of one claimed chunk."""
        return ResultBuffer(self, claim)

    def _mark(self, buffer: ResultBuffer) -> None:
        self._dirty[buffer] = None

    async def flush(self) -> None:
        """Record what every buffer holds. While one flush runs, the next waits for it and takes what came in
        meanwhile (nothing, when that flush was the one that took it)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            wait = self._last + self._gather - loop.time()
            if wait > 0 and self._dirty:
                await asyncio.sleep(wait)
            self._last = loop.time()
            taken = [(b, b._take()) for b in self._dirty]
            self._dirty.clear()
            taken = [(b, items) for b, items in taken if items]
            if not taken:
                return
            groups = [ResultGroup(b.claim.batch_id, b.claim.spec.index, b.claim.generation, [r for r, _ in items])
                      for b, items in taken]
            try:
                recorded = await self._store.record_results_of(groups)
            except BaseException:
                for b, items in taken:  # not known to be stored: keep them (a repeat is ignored by the store)
                    b._restore(items)
                raise
            for (b, items), ok in zip(taken, recorded, strict=True):
                b._settle(items, ok)


class ResultBuffer:
    """The results of one claimed chunk, recorded by its worker's `ResultWriter`. Once the chunk's lease is found
    lost (another worker took it over), every flush of this buffer raises LeaseLost."""

    def __init__(self, writer: ResultWriter, claim: ChunkClaim) -> None:
        self._writer = writer
        self.claim = claim
        self._items: list[_Item] = []
        self._lost: LeaseLost | None = None
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> ResultBuffer:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Finished results are kept even when the chunk is being abandoned: let the flusher drain (shielded, so
        # a cancelled chunk does not cancel a transaction that is queued or running), then flush what is left.
        self._closing = True
        self._wake.set()
        if self._ticker is not None:
            await asyncio.shield(asyncio.gather(self._ticker, return_exceptions=True))
        await asyncio.shield(self.flush())

    def add(self, result: RequestResult) -> None:
        self._push((result, None))

    async def record(self, result: RequestResult) -> None:
        """Add `result` and return once it is committed (or raise LeaseLost)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push((result, fut))
        await fut

    def _push(self, item: _Item) -> None:
        self._items.append(item)
        self._writer._mark(self)
        self._wake.set()

    async def _tick(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Record what this buffer holds (and what the others hold: one transaction). Always through the writer's
        lock, even with nothing here: a flush that took this buffer's results may still be running, and only once
        it is done are they known to be stored."""
        await self._writer.flush()
        if self._lost is not None:
            raise self._lost

    # -- what the writer calls, under its lock ------------------------------------------------------------
    def _take(self) -> list[_Item]:
        items, self._items = self._items, []
        return items

    def _restore(self, items: list[_Item]) -> None:
        self._items[:0] = items
        self._writer._mark(self)

    def _settle(self, items: list[_Item], recorded: bool) -> None:
        if not recorded and self._lost is None:
            self._lost = LeaseLost(f"{self.claim.batch_id} chunk {self.claim.spec.index}")
        for _, fut in items:
            if fut is not None and not fut.done():  # its waiter may have been cancelled meanwhile
                if self._lost is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(self._lost)
