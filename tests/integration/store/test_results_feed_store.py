"""The recording sequence behind GET /v1/batches/{id}/results, on SQLite and PostgreSQL, with several connections
recording into one batch at once (as several workers do): a follower that moves its cursor as the API does never
misses a line nor sees one twice, even with duplicates (which leave gaps on PostgreSQL); the finalizer's lines are
fenced by the batch task's generation; kept results are dropped when their time comes."""

from __future__ import annotations

import asyncio
import random

from batchgate.domain.results_feed import FeedLine, next_cursor
from batchgate.domain.status import BatchStatus
from batchgate.store.base import Store

from .test_store_concurrency import Stores, result, running_batch, with_stores

__all__ = ["with_stores"]

CHUNKS = 30


async def follow_until(s: Store, stop: asyncio.Event, limit: int) -> list[FeedLine]:
    """Read as the API does (head, then the lines after the cursor) until `stop` is set and nothing is left."""
    seen: list[FeedLine] = []
    after = 0
    while True:
        stopping = stop.is_set()
        head = await s.result_head("batch_c")
        assert head is not None
        lines = await s.results_after("batch_c", after, limit)
        after, more = next_cursor(head, after, lines, limit)
        seen += lines
        if stopping and not more and not lines:
            return seen
        await asyncio.sleep(0.01 if len(seen) % 3 else 0)  # falls behind now and then: full pages


def test_a_follower_sees_every_line_once_while_many_connections_record(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        await running_batch(stores[0], CHUNKS)  # chunk i holds lines 2i+1 and 2i+2
        claims = await stores[0].claim_chunks_of("w", now=2.0, lease=300, wants=[("batch_c", CHUNKS)])
        assert len(claims) == CHUNKS
        stop = asyncio.Event()

        async def recorder(s: Store, mine: list[int], rng: random.Random) -> None:
            for idx in mine:
                c = claims[idx]
                lines = [c.spec.first_line, c.spec.last_line]
                for line in lines:
                    assert await s.record_results("batch_c", idx, c.generation, [result(line)])
                    await asyncio.sleep(rng.random() / 500)
                # a duplicate (a retried flush): not stored again, not counted
                assert await s.record_results("batch_c", idx, c.generation, [result(lines[0])])

        follower = asyncio.ensure_future(follow_until(stores[5], stop, limit=3))
        await asyncio.gather(*(recorder(s, list(range(i, CHUNKS, 5)), random.Random(i))
                               for i, s in enumerate(stores[:5])))
        stop.set()
        seen = await follower
        numbers = [int(x.data.split(b":")[1].rstrip(b"}")) for x in seen]
        assert sorted(numbers) == list(range(1, 2 * CHUNKS + 1))  # every line, once
        assert [x.seq for x in seen] == sorted({x.seq for x in seen})  # in recording order
        batch = await stores[0].get_batch("batch_c")
        assert batch is not None and batch.request_counts.completed == 2 * CHUNKS

    with_stores(body)


def test_final_lines_are_fenced_and_kept_results_dropped(with_stores: Stores) -> None:
    async def body(stores: list[Store]) -> None:
        s = stores[0]
        await running_batch(s, 2)
        claims = await s.claim_chunks_of("w", now=2.0, lease=300, wants=[("batch_c", 2)])
        assert await s.record_results("batch_c", 0, claims[0].generation, [result(1), result(2)])
        for c in claims:
            assert await s.complete_chunk("batch_c", c.spec.index, c.generation, now=3) is True
        task = await s.claim_batch_task("f", now=4.0, lease=30)
        assert task is not None
        assert not await s.record_final_lines("batch_c", task.generation - 1, [(3, b'{"line":3}')])
        assert await s.record_final_lines("batch_c", task.generation, [(3, b'{"line":3}'), (4, b'{"line":4}')])
        got = await s.results_after("batch_c", 0, 10)
        assert [x.data for x in got] == [b'{"line":1}', b'{"line":2}', b'{"line":3}', b'{"line":4}']
        assert [x.ok for x in got] == [True, True, False, False]
        head = await s.result_head("batch_c")
        assert head is not None and head.recorded == got[-1].seq and not head.dropped
        assert head.status is BatchStatus.FINALIZING and head.project == "p"
        await s.keep_results("batch_c", 100)
        assert await s.drop_kept_results(99, 10) == 0
        assert await s.drop_kept_results(100, 10) == 1
        head = await s.result_head("batch_c")
        assert head is not None and head.dropped
        assert await s.results_after("batch_c", 0, 10) == []
        assert await s.drop_kept_results(1000, 10) == 0
        assert await s.result_head("batch_nope") is None

    with_stores(body)


