"""The worker's group commit over a real store (SQLite and PostgreSQL): the results of chunks of many batches go
out in one call, each chunk fenced by its own claim, and a buffer returns only once its results are stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import pytest
from pgtools import Body

from batchgate.domain.batch import Batch, RequestCounts, Usage
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkClaim, ChunkSpec, RequestResult, ResultGroup
from batchgate.store.base import Store
from batchgate.worker.buffer import LeaseLost, ResultWriter

BATCHES = 10
PER_CHUNK = 20


class Counted:
    """The real store, counting the group commits it is asked for (and what each carried)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits: list[list[tuple[str, int, int]]] = []  # per commit: (batch, chunk, results)

    async def record_results_of(self, groups: Sequence[ResultGroup]) -> list[bool]:
        self.commits.append([(g.batch_id, g.chunk, len(g.results)) for g in groups])
        return await self.store.record_results_of(groups)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def running(s: Store, n: int) -> list[ChunkClaim]:
    """`n` batches in progress with one chunk of PER_CHUNK requests each, claimed."""
    for i in range(n):
        await s.insert_batch(Batch(f"batch_{i}", "p", "/v1/chat/completions", "file-x", "24h",
                                   BatchStatus.VALIDATING, created_at=1 + i, expires_at=100_000))
        task = await s.claim_batch_task("v", now=1.0, lease=10)
        assert task is not None
        assert await s.start_batch(task.batch.id, task.generation, [ChunkSpec(0, 1, PER_CHUNK, 0, 1, PER_CHUNK)],
                                   "m", now=2)
    return await s.claim_chunks_of("w", now=3.0, lease=300, wants=[(f"batch_{i}", 1) for i in range(n)])


def ok(line: int) -> RequestResult:
    return RequestResult(line, True, b'{"line":%d}' % line, Usage(1, 0, 1, 0, 2))


def test_round_robin_answers_of_many_batches_share_commits(run_with_store: Callable[[Body], None]) -> None:
    """Answers arriving one per batch in turn (the gate's round robin) are committed together: far fewer
    transactions than chunks x answers, and each carrying several batches."""

    async def body(s: Store) -> None:
        claims = await running(s, BATCHES)
        counted = Counted(s)
        writer = ResultWriter(counted)  # type: ignore[arg-type]  # the store, counted
        async with contextlib.AsyncExitStack() as stack:
            buffers = [await stack.enter_async_context(writer.buffer(c)) for c in claims]
            await asyncio.gather(*(buffers[k].record(ok(line))
                                   for line in range(1, PER_CHUNK + 1) for k in range(BATCHES)))
        for i in range(BATCHES):
            got = await s.get_batch(f"batch_{i}")
            assert got is not None and got.request_counts == RequestCounts(PER_CHUNK, PER_CHUNK, 0)
            assert await s.done_lines(f"batch_{i}", 1, PER_CHUNK) == set(range(1, PER_CHUNK + 1))
        carried = [c for c in counted.commits if c]
        assert sum(n for commit in carried for _, _, n in commit) == BATCHES * PER_CHUNK
        assert len(carried) <= BATCHES * PER_CHUNK // 10  # a commit per chunk per answer would be 200
        assert max(len({b for b, _, _ in commit}) for commit in carried) == BATCHES

    run_with_store(body)


def test_a_lost_chunk_fails_alone_and_stays_lost(run_with_store: Callable[[Body], None]) -> None:
    """A chunk another worker took over gets LeaseLost (now and at every later flush); the chunks committed with it
    are stored as usual."""

    async def body(s: Store) -> None:
        mine, stolen = await running(s, 2)
        taken = await s.claim_chunks_of("other", now=400.0, lease=300, wants=[("batch_1", 1)])
        assert len(taken) == 1 and taken[0].generation != stolen.generation
        writer = ResultWriter(s)
        async with writer.buffer(mine) as a:
            b = writer.buffer(stolen)
            await b.__aenter__()
            results = await asyncio.gather(a.record(ok(1)), b.record(ok(1)), return_exceptions=True)
            assert results[0] is None and isinstance(results[1], LeaseLost)
            b.add(ok(2))
            with pytest.raises(LeaseLost):
                await b.flush()
            with pytest.raises(LeaseLost):
                await b.__aexit__(None, None, None)
            a.add(ok(2))
        assert await s.done_lines("batch_0", 1, PER_CHUNK) == {1, 2}
        assert await s.done_lines("batch_1", 1, PER_CHUNK) == set()

    run_with_store(body)


def test_a_buffer_waits_for_the_flush_that_carries_its_results(run_with_store: Callable[[Body], None]) -> None:
    """Results added to one buffer may go out in a flush another buffer started; flushing the first returns only
    after that transaction, so the chunk is never completed before its results are stored."""

    async def body(s: Store) -> None:
        first, second = await running(s, 2)
        writer = ResultWriter(s)
        async with writer.buffer(first) as a, writer.buffer(second) as b:
            a.add(ok(1))
            b.add(ok(1))
            carrying = asyncio.create_task(b.flush())  # takes both buffers' results
            await asyncio.sleep(0)
            await a.flush()  # nothing left in `a`: waits for the flush that took its result
            assert await s.done_lines("batch_0", 1, PER_CHUNK) == {1}
            await carrying

    run_with_store(body)


def test_results_arriving_within_the_gather_interval_share_one_commit(run_with_store: Callable[[Body], None]) -> None:
    """After a flush the next waits out the gather interval: results arriving one by one meanwhile, of several
    batches, go in one commit (more results per batch per commit: fewer pages written per result)."""

    async def body(s: Store) -> None:
        claims = await running(s, 3)
        counted = Counted(s)
        writer = ResultWriter(counted, gather=2.0)  # type: ignore[arg-type]  # the store, counted
        async with contextlib.AsyncExitStack() as stack:
            buffers = [await stack.enter_async_context(writer.buffer(c)) for c in claims]
            await buffers[0].record(ok(1))  # the first flush goes at once
            assert len(counted.commits) == 1
            later = [asyncio.create_task(b.record(ok(2))) for b in buffers]
            for _ in range(20):  # each buffer's ticker runs, and finds the writer waiting
                await asyncio.sleep(0)
            assert len(counted.commits) == 1 and not any(t.done() for t in later)
            await asyncio.gather(*later)
        assert counted.commits[1] == [("batch_0", 0, 1), ("batch_1", 0, 1), ("batch_2", 0, 1)]

    run_with_store(body)
