"""Pause, resume and retries in every Store adapter (real SQLite and the real PostgreSQL server)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pgtools import Body

from batchgate.domain.batch import Batch, RetryOnly, Usage
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec, RequestResult
from batchgate.store.base import Store

CHUNKS = [ChunkSpec(0, 1, 2, 0, 10, 2), ChunkSpec(1, 3, 4, 10, 20, 2)]


def batch(i: int = 0) -> Batch:
    return Batch(f"batch_{i}", "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                 created_at=1000 + i, expires_at=10_000 + i)


async def running(s: Store, i: int = 0) -> None:
    await s.insert_batch(batch(i))
    task = await s.claim_batch_task("w1", now=1.0, lease=10)
    assert task is not None and await s.start_batch(task.batch.id, task.generation, CHUNKS, "m", now=1)


def test_a_paused_batch_is_not_planned_nor_claimed_and_its_chunks_drain(
    run_with_store: Callable[[Body], None],
) -> None:
    async def body(s: Store) -> None:
        await running(s)
        (c0,) = await s.claim_chunks_of("w1", now=2.0, lease=10, wants=[("batch_0", 1)])
        await s.set_estimates([("batch_0", 99)])
        b = await s.pause_batch("batch_0", now=3)
        assert b is not None and b.paused and b.paused_at == 3 and b.status is BatchStatus.IN_PROGRESS
        assert b.estimated_completion_at is None
        again = await s.pause_batch("batch_0", now=4)
        assert again is not None and again.paused_at == 3  # paused once: the first time stands
        beat = await s.renew_chunks([("batch_0", 0, c0.generation)], until=15.0)
        assert beat.pause_batches == {"batch_0"} and not beat.stop_batches and not beat.lost
        assert [load.batch_id for load in await s.schedule_snapshot(now=4.0)] == []
        assert await s.claim_chunks_of("w2", now=4.0, lease=10, wants=[("batch_0", 10)]) == []
        assert await s.claim_batch_task("w2", now=4.0, lease=10) is None  # paused is not finished
        await s.release_chunk("batch_0", 0, c0.generation)

        b = await s.resume_batch("batch_0")
        assert b is not None and not b.paused and b.paused_at is None
        assert [load.batch_id for load in await s.schedule_snapshot(now=5.0)] == ["batch_0"]
        assert [c.spec.index for c in await s.claim_chunks_of("w2", now=5.0, lease=10,
                                                               wants=[("batch_0", 10)])] == [0, 1]
        assert (await s.renew_chunks([("batch_0", 0, c0.generation + 1)], until=20.0)).pause_batches == frozenset()

        # cancelled while paused: the heartbeat says stop, and the pause no longer shows
        await s.pause_batch("batch_0", now=6)
        cancelled = await s.request_cancel("batch_0", now=7)
        assert cancelled is not None and cancelled.status is BatchStatus.CANCELLING and not cancelled.paused
        beat = await s.renew_chunks([("batch_0", 0, c0.generation + 1)], until=20.0)
        assert beat.stop_batches == {"batch_0"} and not beat.pause_batches
        ended = await s.pause_batch("batch_0", now=8)
        assert ended is not None and not ended.paused  # a cancelling batch cannot be paused
        assert await s.pause_batch("batch_nope", now=8) is None and await s.resume_batch("batch_nope") is None

    run_with_store(body)


def test_one_retry_of_each_kind_and_the_recorded_lines(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s)
        (c0,) = await s.claim_chunks_of("w1", now=2.0, lease=10, wants=[("batch_0", 1)])
        results = [RequestResult(1, True, b"{}", Usage()), RequestResult(2, False, b"{}", Usage())]
        assert await s.record_results("batch_0", 0, c0.generation, results)
        assert await s.recorded_lines("batch_0") == {1, 2}
        assert await s.recorded_lines("batch_0", ok=False) == {2}
        assert await s.recorded_lines("batch_0", ok=True) == {1}

        first = replace(batch(1), retried_from="batch_0", retry_only=RetryOnly.FAILED)
        stored = await s.insert_retry(first)
        assert stored.id == "batch_1" and stored.retried_from == "batch_0" and stored.retry_only is RetryOnly.FAILED
        assert (await s.insert_retry(replace(batch(2), retried_from="batch_0",
                                             retry_only=RetryOnly.FAILED))).id == "batch_1"
        assert await s.get_batch("batch_2") is None
        other = await s.insert_retry(replace(batch(3), retried_from="batch_0", retry_only=RetryOnly.UNFINISHED))
        assert other.id == "batch_3" and other.retry_only is RetryOnly.UNFINISHED
        plain = await s.get_batch("batch_0")
        assert plain is not None and plain.retried_from is None and plain.retry_only is None

    run_with_store(body)
