"""set_at_risk, the planner's marks on batches at risk of missing their window (batches.at_risk_since): the same
on every Store adapter, run on real SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec
from batchgate.store.base import Store


async def running(s: Store, batch_id: str, seq: int = 0) -> None:
    await s.insert_batch(Batch(batch_id, "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                               created_at=1000 + seq, expires_at=100_000 + seq))
    task = await s.claim_batch_task("v", now=1.0, lease=10)
    assert task is not None and task.batch.id == batch_id
    assert await s.start_batch(batch_id, task.generation, [ChunkSpec(0, 1, 2, 0, 20, 2)], "m", now=2)


async def since(s: Store, batch_id: str) -> int | None:
    b = await s.get_batch(batch_id)
    assert b is not None
    return b.at_risk_since


def test_a_mark_goes_only_on_a_running_batch_and_keeps_its_first_time(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a")
        await running(s, "batch_b", seq=1)
        assert await since(s, "batch_a") is None
        await s.request_cancel("batch_b", now=3)
        await s.set_at_risk([("batch_a", 500), ("batch_b", 600), ("batch_nope", 700)])
        assert (await since(s, "batch_a"), await since(s, "batch_b")) == (500, None)
        assert [b.at_risk_since for b in (await s.list_batches("p", None, 10)).items] == [None, 500]
        # found at risk again (by this worker's next plan, or another worker's): the first time stands
        await s.set_at_risk([("batch_a", 530)])
        assert await since(s, "batch_a") == 500
        await s.set_at_risk([])

    run_with_store(body)


def test_a_mark_comes_off_whatever_the_status(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a")
        await running(s, "batch_b", seq=1)
        await s.set_at_risk([("batch_a", 500), ("batch_b", 500)])
        await s.set_at_risk([("batch_a", None)])  # safe again, or lost: it takes its fair share
        assert (await since(s, "batch_a"), await since(s, "batch_b")) == (None, 500)
        await s.request_cancel("batch_b", now=3)  # it stopped running before the planner took its mark off
        await s.set_at_risk([("batch_b", None)])
        assert await since(s, "batch_b") is None
        await s.set_at_risk([("batch_a", 800), ("batch_a", None)])  # named twice: the last one
        assert await since(s, "batch_a") is None
        await s.set_at_risk([("batch_a", None), ("batch_a", 900)])
        assert await since(s, "batch_a") == 900

    run_with_store(body)
