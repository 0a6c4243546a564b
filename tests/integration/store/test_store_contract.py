"""Behaviour every Store adapter must have. Runs on real SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable

from pgtools import Body

from batchgate.domain.batch import Batch, ErrorCount, RequestCounts, Usage
from batchgate.domain.files import StoredFile
from batchgate.domain.status import BatchStatus
from batchgate.domain.work import ChunkSpec, RequestResult, ResultGroup, TaskKind
from batchgate.store.base import Store


def batch(i: int = 0, project: str = "p") -> Batch:
    return Batch(f"batch_{i}", project, "/v1/chat/completions", "file-x", "24h", BatchStatus.VALIDATING,
                 created_at=1000 + i, expires_at=10_000 + i)


CHUNKS = [ChunkSpec(0, 1, 2, 0, 10, 2), ChunkSpec(1, 3, 4, 10, 20, 2)]


def result(line: int, ok: bool = True) -> RequestResult:
    return RequestResult(line, ok, b'{"line":%d}' % line, Usage(1, 0, 2, 0, 3), retries=1)


def test_files_pagination_and_scoping(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        for i in range(5):
            await s.insert_file(StoredFile(f"f{i}", "p", 1, 100 + i, "a", "batch", None))
        await s.insert_file(StoredFile("other", "q", 1, 100, "a", "batch", None))
        await s.insert_file(StoredFile("old", "p", 1, 100, "a", "batch", 50))  # expired
        page = await s.list_files("p", None, False, None, 2, now=60)
        assert [f.id for f in page.items] == ["f4", "f3"] and page.has_more
        page = await s.list_files("p", None, False, "f3", 10, now=60)
        assert [f.id for f in page.items] == ["f2", "f1", "f0"] and not page.has_more
        page = await s.list_files("p", "batch", True, None, 10, now=60)
        assert [f.id for f in page.items] == ["f0", "f1", "f2", "f3", "f4"]
        assert await s.delete_file("f0") and not await s.delete_file("f0")
        assert await s.get_file("f0") is None

    run_with_store(body)


def test_validate_then_chunks_then_finalize_exactly_once(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch())
        task = await s.claim_batch_task("w1", now=1.0, lease=10)
        assert task is not None and task.kind is TaskKind.VALIDATE
        assert await s.claim_batch_task("w2", now=2.0, lease=10) is None  # leased
        assert await s.start_batch(task.batch.id, task.generation, CHUNKS, "m", now=5)
        b = await s.get_batch("batch_0")
        assert b is not None and b.status is BatchStatus.IN_PROGRESS and b.request_counts.total == 4

        claims = await s.claim_chunks_of("w1", now=3.0, lease=10, wants=[("batch_0", 10)])
        assert [c.spec.index for c in claims] == [0, 1]
        assert await s.claim_chunks_of("w2", now=4.0, lease=10, wants=[("batch_0", 10)]) == []
        c0, c1 = claims
        assert await s.record_results("batch_0", 0, c0.generation, [result(1), result(2, ok=False)])
        # the same line again (a retry after a crash) is ignored, never counted twice
        assert await s.record_results("batch_0", 0, c0.generation, [result(1)])
        assert await s.complete_chunk("batch_0", 0, c0.generation, now=6)
        # lease of chunk 1 runs out; another worker takes it over, the stale one is fenced out
        stolen = await s.claim_chunks_of("w2", now=20.0, lease=10, wants=[("batch_0", 10)])
        assert [c.spec.index for c in stolen] == [1]
        assert not await s.record_results("batch_0", 1, c1.generation, [result(3)])
        assert await s.done_lines("batch_0", 3, 4) == set()
        assert await s.record_results("batch_0", 1, stolen[0].generation, [result(3), result(4)])
        assert await s.complete_chunk("batch_0", 1, stolen[0].generation, now=7)

        b = await s.get_batch("batch_0")
        assert b is not None and b.status is BatchStatus.FINALIZING and b.finalizing_at == 7
        assert b.request_counts == RequestCounts(4, 3, 1)
        assert b.usage.total_tokens == 12 and b.retries == 4
        fin = await s.claim_batch_task("w1", now=25.0, lease=10)
        assert fin is not None and fin.kind is TaskKind.FINALIZE
        assert await s.finish_batch("batch_0", fin.generation, BatchStatus.COMPLETED, 8, "out", None,
                                    RequestCounts(4, 3, 1))
        assert not await s.finish_batch("batch_0", fin.generation, BatchStatus.COMPLETED, 8, "out", None,
                                        RequestCounts(4, 3, 1))
        b = await s.get_batch("batch_0")
        assert b is not None and b.status is BatchStatus.COMPLETED and b.output_file_id == "out"

    run_with_store(body)


def test_results_of_several_chunks_and_batches_in_one_call(run_with_store: Callable[[Body], None]) -> None:
    """record_results_of (the worker's group commit): each group fenced by its own chunk's generation, a refused
    group stores nothing and leaves the others alone, and every batch's recording numbers stay in order."""

    async def body(s: Store) -> None:
        for i in (0, 1):
            await s.insert_batch(batch(i))
            task = await s.claim_batch_task("w1", now=1.0, lease=10)
            assert task is not None and task.batch.id == f"batch_{i}"
            assert await s.start_batch(task.batch.id, task.generation, CHUNKS, "m", now=2)
        a0, a1, b0, b1 = await s.claim_chunks_of("w1", now=3.0, lease=10, wants=[("batch_0", 2), ("batch_1", 2)])
        stale = await s.claim_chunks_of("w2", now=20.0, lease=10, wants=[("batch_1", 1)])  # b0 lost to w2
        assert [c.spec.index for c in stale] == [0] and stale[0].batch_id == "batch_1"
        assert await s.record_results_of([]) == []
        assert await s.record_results_of([
            ResultGroup("batch_1", 1, b1.generation, [result(3)]),
            ResultGroup("batch_0", 1, a1.generation, [result(4), result(3, ok=False)]),
            ResultGroup("batch_1", 0, b0.generation, [result(1)]),  # fenced out
            ResultGroup("batch_0", 0, a0.generation, [result(1), result(2)]),
        ]) == [True, True, False, True]
        assert await s.done_lines("batch_0", 1, 4) == {1, 2, 3, 4}
        assert await s.done_lines("batch_1", 1, 4) == {3}
        one, two = await s.get_batch("batch_0"), await s.get_batch("batch_1")
        assert one is not None and one.request_counts == RequestCounts(4, 3, 1)
        assert two is not None and two.request_counts == RequestCounts(4, 1, 0)
        lines = await s.results_after("batch_0", 0, 10)
        assert [line.seq for line in lines] == [1, 2, 3, 4]

    run_with_store(body)


def test_cancel_stops_claims_and_finalize_waits_for_live_chunks(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch())
        task = await s.claim_batch_task("w1", now=1.0, lease=10)
        assert task is not None
        await s.start_batch("batch_0", task.generation, CHUNKS, "m", now=1)
        (c0,) = await s.claim_chunks_of("w1", now=2.0, lease=10, wants=[("batch_0", 1)])
        b = await s.request_cancel("batch_0", now=3)
        assert b is not None and b.status is BatchStatus.CANCELLING and b.cancelling_at == 3
        beat = await s.renew_chunks([("batch_0", 0, c0.generation)], until=15.0)
        assert beat.stop_batches == {"batch_0"} and not beat.lost
        assert await s.claim_chunks_of("w2", now=4.0, lease=10, wants=[("batch_0", 10)]) == []
        assert await s.claim_batch_task("w2", now=4.0, lease=10) is None  # chunk 0 still leased
        await s.release_chunk("batch_0", 0, c0.generation)
        fin = await s.claim_batch_task("w2", now=5.0, lease=10)
        assert fin is not None and fin.kind is TaskKind.FINALIZE
        # the finalizer's claim fences out the old chunk holder
        assert not await s.record_results("batch_0", 0, c0.generation, [result(1)])
        codes = (ErrorCount("batch_cancelled", 3, "Not executed."), ErrorCount("server_error", 1, "Boom \u00e9."))
        assert await s.finish_batch("batch_0", fin.generation, BatchStatus.CANCELLED, 6, None, "err",
                                    RequestCounts(4, 0, 4, not_run=3), codes)
        b = await s.get_batch("batch_0")
        assert b is not None and b.status is BatchStatus.CANCELLED
        assert b.request_counts == RequestCounts(4, 0, 4, not_run=3) and b.error_counts == codes
        listed = await s.list_batches("p", None, 10)
        assert listed.items[0].error_counts == codes

    run_with_store(body)


def test_expiry_marks_running_batches(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch())
        task = await s.claim_batch_task("w1", now=1.0, lease=10)
        assert task is not None
        await s.start_batch("batch_0", task.generation, CHUNKS, "m", now=1)
        assert await s.mark_expiring(now=9_999) == 0
        assert await s.mark_expiring(now=10_000) == 1
        assert await s.claim_chunks_of("w1", now=2.0, lease=10, wants=[("batch_0", 10)]) == []
        fin = await s.claim_batch_task("w1", now=20.0, lease=10)
        assert fin is not None and fin.kind is TaskKind.FINALIZE and fin.expiring

    run_with_store(body)


def test_dead_owner_leases_are_released(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch())
        task = await s.claim_batch_task("gone", now=1.0, lease=100)
        assert task is not None
        await s.start_batch("batch_0", task.generation, CHUNKS, "m", now=1)
        await s.claim_chunks_of("gone", now=2.0, lease=100, wants=[("batch_0", 10)])
        assert await s.lease_owners() == {"gone"}
        await s.release_owner("gone")
        assert len(await s.claim_chunks_of("w2", now=3.0, lease=10, wants=[("batch_0", 10)])) == 2

    run_with_store(body)


def test_keys(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        assert not await s.has_keys()
        await s.create_key("k1", "proj", "hash1", False, 1)
        assert await s.has_keys()
        info = await s.find_key("hash1")
        assert info is not None and info.project == "proj" and not info.admin
        assert await s.find_key("nope") is None

    run_with_store(body)


def test_admin_listing_keys_and_enqueued_tokens(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.create_key("k1", "a", "h1", False, 1)
        await s.create_key("k2", "b", "h2", True, 2)
        assert [(k.id, k.project, k.admin, k.created_at) for k in await s.list_keys()] == [
            ("k1", "a", False, 1), ("k2", "b", True, 2)]
        assert await s.delete_key("k1") and not await s.delete_key("k1")
        assert await s.find_key("h1") is None

        await s.insert_file(StoredFile("fa", "a", 1, 100, "x", "batch", None))
        await s.insert_file(StoredFile("fb", "b", 1, 101, "x", "batch", None))
        assert [f.id for f in (await s.list_files(None, None, True, None, 10, now=1)).items] == ["fa", "fb"]
        assert [f.id for f in (await s.list_files(None, None, True, "fa", 10, now=1)).items] == ["fb"]
        await s.insert_batch(batch(0, "a"))
        await s.insert_batch(batch(1, "b"))
        assert [b.id for b in (await s.list_batches(None, None, 10)).items] == ["batch_1", "batch_0"]
        assert [b.id for b in (await s.list_batches("a", None, 10)).items] == ["batch_0"]

        assert await s.enqueued_tokens("a", "m") == 0
        task = await s.claim_batch_task("w", now=1.0, lease=10)
        assert task is not None and task.batch.id == "batch_0"
        assert await s.start_batch("batch_0", task.generation, CHUNKS, "m", now=1, prompt_tokens=1234)
        assert await s.enqueued_tokens("a", "m") == 1234
        assert await s.enqueued_tokens("a", "other") == 0 and await s.enqueued_tokens("b", "m") == 0

    run_with_store(body)


def test_count_batches_by_status(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        assert await s.count_batches_by_status() == {}
        for i, project in enumerate(["a", "a", "b"]):
            await s.insert_batch(batch(i, project))
        task = await s.claim_batch_task("w", now=1.0, lease=10)
        assert task is not None
        assert await s.start_batch(task.batch.id, task.generation, CHUNKS, "m", now=1)
        assert await s.request_cancel("batch_2", now=2) is not None
        assert await s.count_batches_by_status() == {
            BatchStatus.IN_PROGRESS: 1, BatchStatus.VALIDATING: 1, BatchStatus.CANCELLING: 1}
        assert await s.count_batches_by_status("a") == {BatchStatus.IN_PROGRESS: 1, BatchStatus.VALIDATING: 1}
        assert await s.count_batches_by_status("nobody") == {}

    run_with_store(body)


def test_a_deleted_input_stays_readable_by_earlier_batches_until_they_end(
    run_with_store: Callable[[Body], None],
) -> None:
    async def body(s: Store) -> None:
        await s.insert_file(StoredFile("file-x", "p", 1, 100, "a", "batch", None))
        await s.insert_file(StoredFile("unused", "p", 1, 100, "a", "batch", None))
        await s.insert_batch(batch(0))  # reads file-x
        assert await s.purgeable_files(now=200, limit=10) == []  # nothing deleted or expired
        assert await s.delete_file("file-x") and await s.delete_file("unused")
        assert await s.get_file("file-x") is None
        assert [f.id for f in (await s.list_files(None, None, True, None, 10, now=200)).items] == []
        await s.insert_batch(batch(1))  # created after the delete: the file is missing for it
        f = await s.input_file("batch_0")
        assert f is not None and f.id == "file-x"
        assert await s.input_file("batch_1") is None
        # batch_0 and batch_1 are unfinished: only the unused file's bytes may go
        assert await s.purgeable_files(now=200, limit=10) == ["unused"]
        assert await s.purgeable_files(now=200, limit=10, file_id="file-x") == []
        await s.mark_purged("unused")
        assert await s.purgeable_files(now=200, limit=10) == []
        for _ in range(2):
            task = await s.claim_batch_task("w", now=1.0, lease=10)
            assert task is not None
            assert await s.fail_batch(task.batch.id, task.generation, [], now=2)
        assert await s.purgeable_files(now=200, limit=10) == ["file-x"]
        assert await s.purgeable_files(now=200, limit=10, file_id="file-x") == ["file-x"]
        await s.mark_purged("file-x")
        assert await s.input_file("batch_0") is None
        assert await s.purgeable_files(now=200, limit=10) == []
        # the rows stay as tombstones: a list cursor that names a deleted file still works
        await s.insert_file(StoredFile("later", "p", 1, 300, "a", "batch", None))
        assert [f.id for f in (await s.list_files("p", None, True, "file-x", 10, now=200)).items] == ["later"]

    run_with_store(body)


def test_an_expired_input_keeps_its_bytes_while_a_batch_reads_it(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_file(StoredFile("file-x", "p", 1, 100, "a", "batch", 5000))
        await s.insert_batch(batch(0))  # created at 1000, before the file expires at 5000
        task = await s.claim_batch_task("w", now=1.0, lease=10)
        assert task is not None
        assert await s.start_batch("batch_0", task.generation, CHUNKS, "m", now=1)
        assert await s.purgeable_files(now=4999, limit=10) == []
        assert await s.purgeable_files(now=6000, limit=10) == []  # expired, but batch_0 still reads it
        f = await s.input_file("batch_0")
        assert f is not None and f.expires_at == 5000
        assert await s.request_cancel("batch_0", now=2) is not None
        fin = await s.claim_batch_task("w", now=20.0, lease=10)
        assert fin is not None
        assert await s.finish_batch("batch_0", fin.generation, BatchStatus.CANCELLED, 3, None, None,
                                    RequestCounts(4, 0, 4))
        assert await s.purgeable_files(now=6000, limit=10) == ["file-x"]

    run_with_store(body)


def test_a_failed_chunk_waits_before_anyone_claims_it_again(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        await s.insert_batch(batch())
        task = await s.claim_batch_task("w1", now=1.0, lease=10)
        assert task is not None
        await s.start_batch("batch_0", task.generation, CHUNKS[:1], "m", now=1)
        (c0,) = await s.claim_chunks_of("w1", now=2.0, lease=10, wants=[("batch_0", 10)])
        assert c0.failures == 0
        assert await s.chunk_failed("batch_0", 0, c0.generation, retry_at=50.0)
        assert not await s.chunk_failed("batch_0", 0, c0.generation - 1, retry_at=50.0)  # not our claim
        assert await s.claim_chunks_of("w2", now=49.0, lease=10, wants=[("batch_0", 10)]) == []
        (again,) = await s.claim_chunks_of("w2", now=50.0, lease=10, wants=[("batch_0", 10)])
        assert again.failures == 1 and again.generation > c0.generation

    run_with_store(body)


def test_list_batches_filters_by_status_across_pages(run_with_store: Callable[[Body], None]) -> None:
    async def body(s: Store) -> None:
        for i in range(5):
            await s.insert_batch(batch(i, "a" if i != 3 else "b"))
        for i in (1, 3, 4):
            assert await s.request_cancel(f"batch_{i}", now=2000) is not None
        cancelling = BatchStatus.CANCELLING
        page = await s.list_batches(None, None, 1, status=cancelling)
        assert [b.id for b in page.items] == ["batch_4"] and page.has_more
        page = await s.list_batches(None, "batch_4", 10, status=cancelling)
        assert [b.id for b in page.items] == ["batch_3", "batch_1"] and not page.has_more
        assert [b.id for b in (await s.list_batches("a", None, 10, status=cancelling)).items] == ["batch_4", "batch_1"]
        page = await s.list_batches("a", None, 10, status=BatchStatus.VALIDATING)
        assert [b.id for b in page.items] == ["batch_2", "batch_0"]
        assert (await s.list_batches(None, None, 10, status=BatchStatus.COMPLETED)).items == []
        assert len((await s.list_batches(None, None, 10, status=None)).items) == 5

    run_with_store(body)
