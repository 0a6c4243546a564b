"""The store's part in Anthropic's Message Batches, on SQLite and PostgreSQL: lists kept apart by endpoint, pages
in both directions (before_id and after_id), and deleting an ended batch with its chunks and results."""

from __future__ import annotations

from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch, Usage
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec, RequestResult
from batchgate.store.base import Store

MESSAGES = "/v1/messages"


def batch(i: int, endpoint: str = MESSAGES, project: str = "p", status: BatchStatus = BatchStatus.VALIDATING) -> Batch:
    prefix = "msgbatch" if endpoint == MESSAGES else "batch"
    return Batch(f"{prefix}_{i}", project, endpoint, "file-x", "24h", status, created_at=1000 + i,
                 expires_at=10_000 + i)


def ids(batches: list[Batch]) -> list[str]:
    return [b.id for b in batches]


def test_lists_apart_and_pages_both_ways(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        for i in range(6):
            await s.insert_batch(batch(i, MESSAGES if i % 2 == 0 else "/v1/chat/completions"))
        await s.insert_batch(batch(6, project="q"))
        mine = await s.list_batches("p", None, 10, endpoint=MESSAGES)
        assert ids(mine.items) == ["msgbatch_4", "msgbatch_2", "msgbatch_0"]
        assert ids((await s.list_batches("p", None, 10, other_than=MESSAGES)).items) == ["batch_5", "batch_3",
                                                                                       "batch_1"]
        assert len((await s.list_batches(None, None, 10, endpoint=MESSAGES)).items) == 4
        first = await s.list_batches("p", None, 1, endpoint=MESSAGES)
        assert ids(first.items) == ["msgbatch_4"] and first.has_more
        older = await s.list_batches("p", "msgbatch_4", 1, endpoint=MESSAGES)
        assert ids(older.items) == ["msgbatch_2"] and older.has_more
        newer = await s.list_batches("p", None, 1, endpoint=MESSAGES, before="msgbatch_0")
        assert ids(newer.items) == ["msgbatch_2"] and newer.has_more
        newest = await s.list_batches("p", None, 5, endpoint=MESSAGES, before="msgbatch_0")
        assert ids(newest.items) == ["msgbatch_4", "msgbatch_2"] and not newest.has_more
        assert (await s.list_batches("p", None, 5, endpoint=MESSAGES, before="msgbatch_6")).items == []  # not p's

    run_with_store(body)


def test_delete_only_an_ended_batch_with_its_rows(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch(0))
        task = await s.claim_batch_task("w", now=1.0, lease=10)
        assert task is not None
        assert await s.start_batch("msgbatch_0", task.generation, [ChunkSpec(0, 1, 2, 0, 10, 2)], "m", now=1)
        (claim,) = await s.claim_chunks_of("w", now=2.0, lease=10, wants=[("msgbatch_0", 1)])
        assert await s.record_results("msgbatch_0", 0, claim.generation, [RequestResult(1, True, b"{}", Usage())])
        assert not await s.delete_batch("msgbatch_0")  # still running
        assert await s.request_cancel("msgbatch_0", now=3) is not None
        assert not await s.delete_batch("msgbatch_0")  # cancelling is not ended either
        await s.insert_batch(batch(1, status=BatchStatus.CANCELLED))
        await s.insert_batch(batch(2, status=BatchStatus.COMPLETED))
        assert await s.delete_batch("msgbatch_2")
        assert await s.get_batch("msgbatch_2") is None
        assert not await s.delete_batch("msgbatch_2")
        assert ids((await s.list_batches("p", None, 10)).items) == ["msgbatch_1", "msgbatch_0"]
        assert await s.results_in("msgbatch_0", 1, 2) != []  # the others' rows stay

    run_with_store(body)
