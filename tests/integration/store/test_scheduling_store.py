"""What the scheduler asks of every Store adapter: project weights, the snapshot of runnable batches, claims in the
planner's order and the estimates it writes back. Runs on real SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch, Usage
from batchgate.domain.load import BatchLoad
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec, RequestResult
from batchgate.store.base import Store

LEASE = 30.0


async def running(s: Store, batch_id: str, chunks: int, project: str = "p", seq: int = 0) -> None:
    """A batch in_progress with `chunks` chunks of 2 requests each."""
    await s.insert_batch(Batch(batch_id, project, "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                               created_at=1000 + seq, expires_at=100_000 + seq))
    task = await s.claim_batch_task("v", now=1.0, lease=10)
    assert task is not None and task.batch.id == batch_id
    specs = [ChunkSpec(i, 2 * i + 1, 2 * i + 2, 20 * i, 20 * i + 20, 2) for i in range(chunks)]
    assert await s.start_batch(batch_id, task.generation, specs, "m", now=2)


def ok(line: int) -> RequestResult:
    return RequestResult(line, True, b'{"line":%d}' % line, Usage())


def failed(line: int) -> RequestResult:
    return RequestResult(line, False, b'{"line":%d}' % line, Usage())


def test_weights_upsert_and_list_only_projects_given_one(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        assert await s.project_weights() == {}
        await s.set_project_weight("alpha", 3.0, now=10)
        await s.set_project_weight("beta", 0.25, now=10)
        assert await s.project_weights() == {"alpha": 3.0, "beta": 0.25}
        await s.set_project_weight("alpha", 1.5, now=11)  # an upsert: changed, not duplicated
        assert await s.project_weights() == {"alpha": 1.5, "beta": 0.25}

    run_with_store(body)


def test_snapshot_counts_leased_open_and_done(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        assert await s.schedule_snapshot(now=3.0) == []
        await running(s, "batch_a", 5, project="alpha")
        await running(s, "batch_b", 3, project="beta", seq=1)
        await s.set_project_weight("alpha", 4.0, now=3)
        claims = await s.claim_chunks_of("w1", now=3.0, lease=LEASE, wants=[("batch_a", 3)])
        c0, c1, c2 = claims
        # chunk 0 ran: 1 completed and 1 failed, done; chunk 1 failed as a whole and waits until 50 to be retried
        assert await s.record_results("batch_a", 0, c0.generation, [ok(1), failed(2)])
        assert await s.complete_chunk("batch_a", 0, c0.generation, now=4)
        assert await s.chunk_failed("batch_a", 1, c1.generation, retry_at=50.0)

        snap = await s.schedule_snapshot(now=5.0)
        assert snap == [
            BatchLoad("batch_a", "alpha", "m", snap[0].seq, 1000, 100_000, total=10, done=2, leased_chunks=1,
                      open_chunks=2, weight=4.0),
            BatchLoad("batch_b", "beta", "m", snap[1].seq, 1001, 100_001, total=6, done=0, leased_chunks=0,
                      open_chunks=3, weight=1.0),
        ]
        assert snap[0].seq < snap[1].seq  # creation order
        # at 40 chunk 2's lease (until 33) has run out: open again; chunk 1 is still waiting for its retry_at
        later = await s.schedule_snapshot(now=40.0)
        assert (later[0].leased_chunks, later[0].open_chunks) == (0, 3)
        assert (await s.schedule_snapshot(now=60.0))[0].open_chunks == 4
        assert c2.spec.index == 2

    run_with_store(body)


def test_snapshot_holds_only_running_batches(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(Batch("batch_v", "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                                   created_at=1, expires_at=10**6))
        task = await s.claim_batch_task("v", now=1.0, lease=10)
        assert task is not None
        assert await s.schedule_snapshot(now=2.0) == []  # validating: nothing to schedule yet
        assert await s.start_batch("batch_v", task.generation, [ChunkSpec(0, 1, 1, 0, 10, 1)], "m", now=2)
        await running(s, "batch_x", 2, seq=1)
        await running(s, "batch_c", 2, seq=2)
        assert [b.batch_id for b in await s.schedule_snapshot(now=3.0)] == ["batch_v", "batch_x", "batch_c"]
        await s.request_cancel("batch_c", now=3)
        assert await s.mark_expiring(now=100_001) == 1  # batch_x's window ran out (batch_v's runs to 10**6)
        assert [b.batch_id for b in await s.schedule_snapshot(now=3.0)] == ["batch_v"]

    run_with_store(body)


def test_claims_follow_the_wanted_order_and_counts(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", 4)
        await running(s, "batch_b", 4, seq=1)
        await running(s, "batch_c", 1, seq=2)
        got = await s.claim_chunks_of("w1", now=3.0, lease=LEASE, wants=[("batch_b", 2), ("batch_a", 1),
                                                                          ("batch_c", 5)])
        assert [(c.batch_id, c.spec.index) for c in got] == [
            ("batch_b", 0), ("batch_b", 1), ("batch_a", 0), ("batch_c", 0)]
        assert got[0].endpoint == "/v1/chat/completions" and got[0].input_file_id == "file-x"
        assert got[0].spec == ChunkSpec(0, 1, 2, 0, 20, 2)
        # leased chunks are skipped; the next ones in index order come instead; nothing left of batch_c
        again = await s.claim_chunks_of("w2", now=4.0, lease=LEASE, wants=[("batch_c", 1), ("batch_b", 3),
                                                                           ("batch_a", 0), ("batch_nope", 2)])
        assert [(c.batch_id, c.spec.index) for c in again] == [("batch_b", 2), ("batch_b", 3)]
        # a batch named twice is claimed from once, at its first place, for the sum of its counts
        twice = await s.claim_chunks_of("w3", now=5.0, lease=LEASE, wants=[("batch_a", 1), ("batch_b", 1),
                                                                           ("batch_a", 1)])
        assert [(c.batch_id, c.spec.index) for c in twice] == [("batch_a", 1), ("batch_a", 2)]
        assert await s.claim_chunks_of("w3", now=5.0, lease=LEASE, wants=[]) == []

    run_with_store(body)


def test_claims_skip_stopped_batches_and_chunks_waiting_to_retry(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", 2)
        await running(s, "batch_b", 2, seq=1)
        await running(s, "batch_c", 2, seq=2)
        await s.request_cancel("batch_a", now=3)
        (first,) = await s.claim_chunks_of("w1", now=3.0, lease=LEASE, wants=[("batch_c", 1)])
        assert await s.chunk_failed("batch_c", 0, first.generation, retry_at=20.0)
        await s.mark_expiring(now=100_001)  # batch_b's window ran out, not batch_c's (100_002)
        wants = [("batch_a", 2), ("batch_b", 2), ("batch_c", 2)]
        got = await s.claim_chunks_of("w2", now=4.0, lease=LEASE, wants=wants)
        assert [(c.batch_id, c.spec.index) for c in got] == [("batch_c", 1)]  # chunk 0 waits until 20
        retried = await s.claim_chunks_of("w2", now=20.0, lease=LEASE, wants=wants)
        assert [(c.batch_id, c.spec.index, c.failures) for c in retried] == [("batch_c", 0, 1)]

    run_with_store(body)


def test_a_claim_fences_out_the_previous_holder(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", 1)
        (old,) = await s.claim_chunks_of("w1", now=3.0, lease=LEASE, wants=[("batch_a", 1)])
        assert await s.claim_chunks_of("w2", now=3.0 + LEASE - 1, lease=LEASE, wants=[("batch_a", 1)]) == []
        (new,) = await s.claim_chunks_of("w2", now=3.0 + LEASE + 1, lease=LEASE, wants=[("batch_a", 1)])
        assert new.generation == old.generation + 1
        assert not await s.record_results("batch_a", 0, old.generation, [ok(1)])
        assert await s.record_results("batch_a", 0, new.generation, [ok(1)])
        # the old-style claim sees the same lease
        assert await s.claim_chunks("w3", now=3.0 + LEASE + 2, lease=LEASE, limit=5) == []

    run_with_store(body)


def test_estimates_are_set_only_on_running_batches(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await running(s, "batch_a", 1)
        await running(s, "batch_b", 1, seq=1)
        b = await s.get_batch("batch_a")
        assert b is not None and b.estimated_completion_at is None
        await s.request_cancel("batch_b", now=3)
        await s.set_estimates([("batch_a", 5000), ("batch_b", 6000), ("batch_nope", 7000)])
        a, cancelled = await s.get_batch("batch_a"), await s.get_batch("batch_b")
        assert a is not None and a.estimated_completion_at == 5000
        assert cancelled is not None and cancelled.estimated_completion_at is None
        assert (await s.list_batches("p", None, 10)).items[-1].estimated_completion_at == 5000
        await s.set_estimates([("batch_a", 5100), ("batch_a", 5200)])  # named twice: the last one
        a = await s.get_batch("batch_a")
        assert a is not None and a.estimated_completion_at == 5200
        await s.set_estimates([("batch_a", None)])  # no estimate any more
        a = await s.get_batch("batch_a")
        assert a is not None and a.estimated_completion_at is None
        await s.set_estimates([])

    run_with_store(body)
