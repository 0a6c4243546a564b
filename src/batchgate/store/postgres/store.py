"""The PostgreSQL adapter (asyncpg pool): the same behaviour as the SQLite adapter, for many processes on many
machines. Each method is one short READ COMMITTED transaction running named queries from queries.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from batchgate.domain.batch import Batch, BatchError, ErrorCount, RequestCounts
from batchgate.domain.files import StoredFile, Upload, UploadPart, UploadStatus
from batchgate.domain.idempotency import IdempotencyRecord
from batchgate.domain.load import BatchLoad
from batchgate.domain.results_feed import FeedLine, ResultHead
from batchgate.domain.status import BatchStatus
from batchgate.domain.tally import tally
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from batchgate.domain.work import BatchTask, ChunkClaim, ChunkSpec, RequestResult, ResultGroup, TaskKind
from batchgate.errors import BackendUnavailable, failure_reason
from batchgate.logs import redact_url
from batchgate.store import live_rows, migrate, rows
from batchgate.store import webhook_rows as hooks
from batchgate.store.base import ChunkHeartbeat, KeyInfo, Page
from batchgate.store.postgres import queries as q

R = TypeVar("R")
Conn = Any  # an asyncpg connection (pooled); asyncpg ships no usable types for it
log = logging.getLogger("batchgate.store")

# A deadlock or serialization failure aborts one transaction; running it again is always safe here.
RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
ATTEMPTS = 5


def _count(status: str) -> int:
    """Rows touched, from asyncpg's command tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self.applied_migrations: list[int] = []

    # -- plumbing -----------------------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
            self.applied_migrations = await self._tx(_migrate)
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            await self.close()
            raise BackendUnavailable(f"cannot use PostgreSQL at {redact_url(self._url)}: {failure_reason(e)}") from e

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _tx(self, fn: Callable[[Conn], Awaitable[R]]) -> R:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    return await fn(conn)
            except RETRYABLE as e:
                if attempt == ATTEMPTS:
                    raise
                log.info("transaction retried after %s", type(e).__name__)
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    async def _one(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchrow(sql, *args)

    async def _all(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.pool.fetch(sql, *args))

    async def _exec(self, sql: str, *args: Any) -> int:
        return _count(await self.pool.execute(sql, *args))

    # -- keys ---------------------------------------------------------------------------------------------
    async def create_key(self, key_id: str, project: str, key_hash: str, admin: bool, now: int) -> None:
        await self._exec(q.INSERT_KEY, key_id, project, key_hash, admin, now)

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        r = await self._one(q.FIND_KEY, key_hash)
        return KeyInfo(r[0], r[1], bool(r[2])) if r else None

    async def has_keys(self) -> bool:
        return bool(await self.pool.fetchval(q.HAS_KEYS))

    async def list_keys(self) -> list[KeyInfo]:
        return [KeyInfo(r[0], r[1], bool(r[2]), r[3]) for r in await self._all(q.LIST_KEYS)]

    async def delete_key(self, key_id: str) -> bool:
        return await self._exec(q.DELETE_KEY, key_id) > 0

    # -- projects -----------------------------------------------------------------------------------------
    async def set_project_weight(self, project: str, weight: float, now: int) -> None:
        await self._exec(q.SET_PROJECT_WEIGHT, project, weight, now)

    async def project_weights(self) -> dict[str, float]:
        return {r[0]: float(r[1]) for r in await self._all(q.PROJECT_WEIGHTS)}

    # -- files --------------------------------------------------------------------------------------------
    async def insert_file(self, f: StoredFile) -> None:
        await self._exec(q.INSERT_FILE, f.id, f.project, f.bytes, f.created_at, f.filename, f.purpose, f.expires_at)

    async def get_file(self, file_id: str) -> StoredFile | None:
        r = await self._one(q.GET_FILE, file_id)
        return rows.file_from_row(r) if r else None

    async def list_files(
        self, project: str | None, purpose: str | None, ascending: bool, after: str | None, limit: int, now: int
    ) -> Page[StoredFile]:
        seq = None
        if after is not None:
            seq = await self.pool.fetchval(q.FILE_SEQ, after, project)
            if seq is None:
                return Page([], False)
        found = await self._all(q.LIST_FILES_ASC if ascending else q.LIST_FILES_DESC, project, now, purpose, seq,
                                limit + 1)
        return Page([rows.file_from_row(r) for r in found[:limit]], len(found) > limit)

    async def delete_file(self, file_id: str) -> bool:
        return await self._exec(q.DELETE_FILE, file_id) > 0

    async def input_file(self, batch_id: str) -> StoredFile | None:
        r = await self._one(q.INPUT_FILE, batch_id)
        return rows.file_from_row(r) if r else None

    async def purgeable_files(self, now: int, limit: int, file_id: str | None = None) -> list[str]:
        if file_id is not None:
            return [r[0] for r in await self._all(q.PURGEABLE_FILE, file_id, now)]
        return [r[0] for r in await self._all(q.PURGEABLE_FILES, now, limit)]

    async def mark_purged(self, file_id: str) -> None:
        await self._exec(q.MARK_PURGED, file_id)

    # -- uploads ------------------------------------------------------------------------------------------
    async def insert_upload(self, u: Upload) -> None:
        await self._exec(q.INSERT_UPLOAD, u.id, u.project, u.bytes, u.created_at, u.expires_at, u.filename,
                         u.purpose, u.mime_type, u.status.value, u.file_expires_after, u.file_id)

    async def get_upload(self, upload_id: str) -> Upload | None:
        r = await self._one(q.GET_UPLOAD, upload_id)
        return rows.upload_from_row(r) if r else None

    async def insert_part(self, p: UploadPart) -> None:
        await self._exec(q.INSERT_PART, p.id, p.upload_id, p.created_at, p.bytes, p.md5)

    async def get_parts(self, upload_id: str) -> list[UploadPart]:
        return [rows.part_from_row(r) for r in await self._all(q.GET_PARTS, upload_id)]

    async def set_upload_status(self, upload_id: str, status: UploadStatus, file_id: str | None = None) -> bool:
        return await self._exec(q.SET_UPLOAD_STATUS, status.value, file_id, upload_id) > 0

    # -- batches: API side --------------------------------------------------------------------------------
    async def insert_batch(self, b: Batch) -> None:
        await self._exec(q.INSERT_BATCH, *rows.batch_to_params(b))

    async def insert_retry(self, b: Batch) -> Batch:
        only = b.retry_only.value if b.retry_only is not None else None

        async def go(conn: Conn) -> Batch:
            await conn.execute(q.INSERT_RETRY, *rows.batch_to_params(b))
            return rows.batch_from_row(await conn.fetchrow(q.RETRY_OF, b.retried_from, only))

        return await self._tx(go)

    async def get_batch(self, batch_id: str) -> Batch | None:
        r = await self._one(q.GET_BATCH, batch_id)
        return rows.batch_from_row(r) if r else None

    async def list_batches(
        self, project: str | None, after: str | None, limit: int, status: BatchStatus | None = None, *,
        endpoint: str | None = None, other_than: str | None = None, before: str | None = None,
    ) -> Page[Batch]:
        seq = None
        cursor = before if before is not None else after
        if cursor is not None:
            seq = await self.pool.fetchval(q.BATCH_SEQ, cursor, project)
            if seq is None:
                return Page([], False)
        found = await self._all(q.LIST_BATCHES_NEWER if before is not None else q.LIST_BATCHES, project, seq,
                                limit + 1, status.value if status else None, endpoint, other_than)
        page = [rows.batch_from_row(r) for r in found[:limit]]
        return Page(page[::-1] if before is not None else page, len(found) > limit)

    async def enqueued_tokens(self, project: str, model: str) -> int:
        return int(await self.pool.fetchval(q.ENQUEUED_TOKENS, project, model))

    async def count_batches_by_status(self, project: str | None = None) -> dict[BatchStatus, int]:
        return {BatchStatus(r[0]): int(r[1]) for r in await self._all(q.COUNT_BATCHES_BY_STATUS, project)}

    async def delete_batch(self, batch_id: str) -> bool:
        async def go(conn: Conn) -> bool:
            if _count(await conn.execute(q.DELETE_BATCH, batch_id)) == 0:
                return False
            await conn.execute(q.DELETE_CHUNKS, batch_id)
            await conn.execute(q.DROP_RESULTS, batch_id)
            return True

        return await self._tx(go)

    async def pause_batch(self, batch_id: str, now: int) -> Batch | None:
        return await self._update_batch(q.PAUSE_BATCH, batch_id, now)

    async def resume_batch(self, batch_id: str) -> Batch | None:
        return await self._update_batch(q.RESUME_BATCH, batch_id)

    async def _update_batch(self, sql: str, batch_id: str, *args: Any) -> Batch | None:
        async def go(conn: Conn) -> Batch | None:
            await conn.execute(sql, batch_id, *args)
            r = await conn.fetchrow(q.GET_BATCH, batch_id)
            return rows.batch_from_row(r) if r else None

        return await self._tx(go)

    async def request_cancel(self, batch_id: str, now: int) -> Batch | None:
        async def go(conn: Conn) -> Batch | None:
            await conn.execute(q.REQUEST_CANCEL, batch_id, now)
            r = await conn.fetchrow(q.GET_BATCH, batch_id)
            return rows.batch_from_row(r) if r else None

        return await self._tx(go)

    # -- batches: worker side -----------------------------------------------------------------------------
    async def mark_expiring(self, now: int) -> int:
        return await self._exec(q.MARK_EXPIRING, now)

    async def claim_batch_task(self, owner: str, now: float, lease: float) -> BatchTask | None:
        async def go(conn: Conn) -> BatchTask | None:
            picked = await conn.fetchrow(q.PICK_BATCH_TASK, now)
            if picked is None:
                return None
            batch_id, status = picked
            row = await conn.fetchrow(q.LEASE_BATCH, batch_id, owner, now + lease)
            if status != "validating":
                await conn.execute(q.FENCE_CHUNKS, batch_id)
            kind = TaskKind.VALIDATE if status == "validating" else TaskKind.FINALIZE
            return BatchTask(kind, rows.batch_from_row(row), row[-2], bool(row[-1]))

        return await self._tx(go)

    async def renew_batch(self, batch_id: str, generation: int, until: float) -> BatchStatus | None:
        status = await self.pool.fetchval(q.RENEW_BATCH, batch_id, generation, until)
        return BatchStatus(status) if status is not None else None

    async def start_batch(
        self, batch_id: str, generation: int, chunks: Sequence[ChunkSpec], model: str | None, now: int,
        prompt_tokens: int = 0,
    ) -> bool:
        async def go(conn: Conn) -> bool:
            total = sum(c.requests for c in chunks)
            if _count(await conn.execute(q.START_BATCH, batch_id, generation, total, model, now, prompt_tokens)) == 0:
                return False
            await conn.execute(
                q.INSERT_CHUNKS, batch_id, [c.index for c in chunks], [c.first_line for c in chunks],
                [c.last_line for c in chunks], [c.byte_start for c in chunks], [c.byte_end for c in chunks],
                [c.requests for c in chunks],
            )
            return True

        return await self._tx(go)

    async def fail_batch(self, batch_id: str, generation: int, errors: Sequence[BatchError], now: int) -> bool:
        async def go(conn: Conn) -> bool:
            if _count(await conn.execute(q.FAIL_BATCH, batch_id, generation, rows.errors_json(errors), now)) == 0:
                return False
            await _emit(conn, batch_id, BatchStatus.FAILED, now)  # same transaction: exactly one event
            return True

        return await self._tx(go)

    async def enter_finalizing(self, batch_id: str, generation: int, now: int) -> bool:
        return await self._exec(q.ENTER_FINALIZING, batch_id, generation, now) > 0

    async def finish_batch(
        self,
        batch_id: str,
        generation: int,
        status: BatchStatus,
        now: int,
        output_file_id: str | None,
        error_file_id: str | None,
        counts: RequestCounts,
        error_counts: Sequence[ErrorCount] = (),
    ) -> bool:
        async def go(conn: Conn) -> bool:
            tag = await conn.execute(
                q.finish_batch(status), batch_id, generation, status.value, now, output_file_id, error_file_id,
                counts.total, counts.completed, counts.failed, counts.not_run, rows.error_counts_json(error_counts),
            )
            if _count(tag) == 0:
                return False
            await _emit(conn, batch_id, status, now)  # same transaction: exactly one event
            return True

        return await self._tx(go)

    async def renew_chunks(self, claims: Sequence[tuple[str, int, int]], until: float) -> ChunkHeartbeat:
        if not claims:
            return ChunkHeartbeat(frozenset(), frozenset())

        async def go(conn: Conn) -> ChunkHeartbeat:
            renewed = await conn.fetch(
                q.RENEW_CHUNKS, until, [c[0] for c in claims], [c[1] for c in claims], [c[2] for c in claims]
            )
            kept = {(r[0], r[1]) for r in renewed}
            lost = {(c[0], c[1]) for c in claims} - kept
            found = await conn.fetch(q.STOPPED_BATCHES, sorted({c[0] for c in claims}))
            return ChunkHeartbeat(frozenset(lost), frozenset(r[0] for r in found if r[1]),
                                  frozenset(r[0] for r in found if not r[1]))

        return await self._tx(go)

    async def record_results(
        self, batch_id: str, chunk: int, generation: int, results: Sequence[RequestResult]
    ) -> bool:
        return (await self.record_results_of([ResultGroup(batch_id, chunk, generation, results)]))[0]

    async def record_results_of(self, groups: Sequence[ResultGroup]) -> list[bool]:
        # One transaction per batch, the batches' side by side on the pool: a transaction holds its batch row's lock
        # (the recording numbers), so one transaction over every batch would keep other workers from all of them.
        by_batch: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            by_batch.setdefault(g.batch_id, []).append(i)
        recorded = [False] * len(groups)

        async def one(batch_id: str, indexes: list[int]) -> None:
            async def go(conn: Conn) -> None:
                await conn.execute(q.LOCK_BATCH, batch_id)
                for i in sorted(indexes, key=lambda i: groups[i].chunk):  # chunk rows in idx order (queries.py)
                    recorded[i] = await _record(conn, groups[i])

            await self._tx(go)

        done = await asyncio.gather(*(one(b, ix) for b, ix in by_batch.items()), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome  # the others are stored or not; a repeat is ignored (recorded lines are skipped)
        return recorded

    async def done_lines(self, batch_id: str, first_line: int, last_line: int) -> set[int]:
        return {r[0] for r in await self._all(q.DONE_LINES, batch_id, first_line, last_line)}

    async def recorded_lines(self, batch_id: str, ok: bool | None = None) -> set[int]:
        return {r[0] for r in await self._all(q.RECORDED_LINES, batch_id, ok)}

    async def complete_chunk(self, batch_id: str, chunk: int, generation: int, now: int) -> bool:
        async def go(conn: Conn) -> bool:
            # The batch row first: two workers finishing the last two chunks see each other's `done`.
            await conn.execute(q.LOCK_BATCH, batch_id)
            if _count(await conn.execute(q.COMPLETE_CHUNK, batch_id, chunk, generation)) == 0:
                return False
            await conn.execute(q.FINALIZE_IF_ALL_DONE, batch_id, now)
            return True

        return await self._tx(go)

    async def release_chunk(self, batch_id: str, chunk: int, generation: int) -> None:
        await self._exec(q.RELEASE_CHUNK, batch_id, chunk, generation)

    async def chunk_failed(self, batch_id: str, chunk: int, generation: int, retry_at: float) -> bool:
        return await self._exec(q.CHUNK_FAILED, batch_id, chunk, generation, retry_at) > 0

    async def results_in(self, batch_id: str, first_line: int, last_line: int) -> list[tuple[int, bool, bytes]]:
        found = await self._all(q.RESULTS_IN, batch_id, first_line, last_line)
        return [(r[0], bool(r[1]), bytes(r[2])) for r in found]

    async def chunk_specs(self, batch_id: str) -> list[ChunkSpec]:
        return [rows.chunk_from_row(r) for r in await self._all(q.CHUNK_SPECS, batch_id)]

    async def drop_results(self, batch_id: str) -> None:
        await self._exec(q.DROP_RESULTS, batch_id)

    async def record_final_lines(self, batch_id: str, generation: int, lines: Sequence[tuple[int, bytes]]) -> bool:
        async def go(conn: Conn) -> bool:
            await conn.execute(q.LOCK_BATCH, batch_id)
            if await conn.fetchval(q.BATCH_GENERATION, batch_id) != generation:
                return False
            if lines:
                base = await conn.fetchval(q.RECORDED, batch_id)
                await conn.fetch(
                    q.INSERT_RESULTS, batch_id, [n for n, _ in lines], [False] * len(lines), [d for _, d in lines],
                    list(range(base + 1, base + 1 + len(lines))),
                )
                await conn.execute(q.SET_RECORDED, batch_id, base + len(lines))
            return True

        return await self._tx(go)

    async def keep_results(self, batch_id: str, until: int) -> None:
        await self._exec(q.KEEP_RESULTS, batch_id, until)

    async def drop_kept_results(self, now: int, limit: int) -> int:
        async def go(conn: Conn) -> int:
            ids = [r[0] for r in await conn.fetch(q.RESULTS_TO_DROP, now, limit)]
            for batch_id in ids:
                await conn.execute(q.DROP_RESULTS, batch_id)
                await conn.execute(q.RESULTS_DROPPED, batch_id)
            return len(ids)

        return await self._tx(go)

    # -- following results ----------------------------------------------------------------------------------
    async def result_head(self, batch_id: str) -> ResultHead | None:
        r = await self._one(q.RESULT_HEAD, batch_id)
        return live_rows.head_from_row(r) if r else None

    async def results_after(self, batch_id: str, after: int, limit: int) -> list[FeedLine]:
        return [live_rows.line_from_row(r) for r in await self._all(q.RESULTS_AFTER, batch_id, after, limit)]

    # -- idempotency keys -----------------------------------------------------------------------------------
    async def claim_idempotency_key(self, k: IdempotencyRecord, now: int, stale_before: int) -> IdempotencyRecord:
        async def go(conn: Conn) -> IdempotencyRecord:
            if _count(await conn.execute(q.INSERT_IDEMPOTENCY_KEY, *live_rows.key_params(k))) == 0:
                await conn.execute(q.TAKE_OVER_IDEMPOTENCY_KEY, *live_rows.take_over_params(k, now, stale_before))
            return live_rows.key_from_row(await conn.fetchrow(q.GET_IDEMPOTENCY_KEY, k.project, k.key))

        return await self._tx(go)

    async def set_idempotency_object(self, project: str, key: str, owner: str, object_id: str) -> bool:
        return await self._exec(q.SET_IDEMPOTENCY_OBJECT, object_id, project, key, owner) > 0

    async def release_idempotency_key(self, project: str, key: str, owner: str) -> None:
        await self._exec(q.RELEASE_IDEMPOTENCY_KEY, project, key, owner)

    async def purge_idempotency_keys(self, now: int) -> int:
        return await self._exec(q.PURGE_IDEMPOTENCY_KEYS, now)

    # -- scheduling ---------------------------------------------------------------------------------------
    async def schedule_snapshot(self, now: float) -> list[BatchLoad]:
        return [rows.load_from_row(r) for r in await self._all(q.SCHEDULE_SNAPSHOT, now)]

    async def claim_chunks_of(
        self, owner: str, now: float, lease: float, wants: Sequence[tuple[str, int]]
    ) -> list[ChunkClaim]:
        merged = rows.merged_wants(wants)
        if not merged:
            return []
        found = await self._tx(lambda conn: conn.fetch(
            q.CLAIM_CHUNKS_OF, now, owner, now + lease, [w[0] for w in merged], [w[1] for w in merged]
        ))
        found = sorted(found, key=lambda r: (r["ord"], r["idx"]))
        return [ChunkClaim(r[0], r[1], r[2], rows.chunk_from_row(r[3:9]), r[9], r[10]) for r in found]

    async def set_estimates(self, estimates: Sequence[tuple[str, int | None]]) -> None:
        latest = dict(estimates)  # a batch named twice: its last estimate
        if latest:
            await self._tx(lambda conn: conn.execute(q.SET_ESTIMATES, list(latest), list(latest.values())))

    async def set_at_risk(self, marks: Sequence[tuple[str, int | None]]) -> None:
        latest = dict(marks)  # a batch named twice: its last mark
        if latest:
            await self._tx(lambda conn: conn.execute(q.SET_AT_RISK, list(latest), list(latest.values())))

    # -- webhooks -----------------------------------------------------------------------------------------
    async def create_webhook(self, e: WebhookEndpoint) -> None:
        await self._tx(lambda conn: conn.execute(q.INSERT_ENDPOINT, *hooks.endpoint_params(e)))

    async def list_webhooks(self, project: str | None) -> list[WebhookEndpoint]:
        return [hooks.endpoint_from_row(r) for r in await self._all(q.LIST_ENDPOINTS, project)]

    async def delete_webhook(self, webhook_id: str, project: str | None) -> bool:
        async def go(conn: Conn) -> bool:
            if _count(await conn.execute(q.DELETE_ENDPOINT, webhook_id, project)) == 0:
                return False
            await conn.execute(q.DISCARD_PENDING, webhook_id)
            return True

        return await self._tx(go)

    async def claim_deliveries(self, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]:
        found = await self._tx(lambda conn: conn.fetch(q.CLAIM_DELIVERIES, now, owner, now + lease, limit))
        return sorted((hooks.claim_from_row(r) for r in found), key=lambda c: c.delivery.next_attempt_at or 0.0)

    async def record_attempt(
        self, delivery_id: str, generation: int, attempt: DeliveryAttempt | None, status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        async def go(conn: Conn) -> bool:
            tag = await conn.execute(
                q.RECORD_ATTEMPT, delivery_id, generation, status.value, next_attempt_at, int(attempt is not None)
            )
            if _count(tag) == 0:
                return False
            if attempt is not None:
                await conn.execute(q.INSERT_ATTEMPT, *hooks.attempt_params(delivery_id, attempt))
            return True

        return await self._tx(go)

    async def deliveries_for_batch(self, batch_id: str) -> list[WebhookDelivery]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            found = await conn.fetch(q.DELIVERIES_OF_BATCH, batch_id)
            by_delivery: dict[str, list[DeliveryAttempt]] = {}
            for a in await conn.fetch(q.ATTEMPTS_OF_BATCH, batch_id):
                by_delivery.setdefault(a[0], []).append(hooks.attempt_from_row(a))
        return [hooks.delivery_from_row(r, by_delivery.get(r[0], ())) for r in found]

    # -- leases of gone processes -------------------------------------------------------------------------
    async def lease_owners(self) -> set[str]:
        return {r[0] for r in await self._all(q.LEASE_OWNERS)}

    async def release_owner(self, owner: str) -> None:
        async def go(conn: Conn) -> None:
            await conn.execute(q.RELEASE_OWNER_BATCHES, owner)
            await conn.execute(q.RELEASE_OWNER_CHUNKS, owner)

        await self._tx(go)


async def _record(conn: Conn, g: ResultGroup) -> bool:
    """One group of record_results_of, inside its transaction, its batch row locked."""
    if await conn.fetchval(q.CHUNK_GENERATION, g.batch_id, g.chunk) != g.generation:
        return False
    # Every result takes a recording number, stored or not (a duplicate leaves a gap); under the batch row's lock,
    # so the numbers commit in order (domain/results_feed.py).
    base = await conn.fetchval(q.RECORDED, g.batch_id)
    results = g.results
    inserted = await conn.fetch(
        q.INSERT_RESULTS, g.batch_id, [r.line for r in results], [r.ok for r in results],
        [r.data for r in results], list(range(base + 1, base + 1 + len(results))),
    )
    if inserted:
        await conn.execute(q.SET_RECORDED, g.batch_id, base + len(results))
    added = tally(results, (r[0] for r in inserted))
    await conn.execute(q.ADD_COUNTS, g.batch_id, *rows.tally_params(added))
    return True


async def _emit(conn: Conn, batch_id: str, status: BatchStatus, now: int) -> None:
    """Queue the event of `batch_id` entering terminal `status` for each endpoint of its project that wants it,
    in the transaction that enters the status: exactly one event per transition."""
    found = await conn.fetch(q.ENDPOINTS_OF_BATCH, batch_id)
    endpoints = [(r[1], r[2], r[3]) for r in found if r[1] is not None]
    if not endpoints:
        return
    planned = hooks.planned_deliveries(endpoints, found[0][0], batch_id, status, now)
    if planned:
        await conn.execute(q.INSERT_DELIVERIES, *(list(col) for col in zip(*planned, strict=True)))


async def _migrate(conn: Conn) -> list[int]:
    """Apply pending migrations in one transaction, under an advisory lock that other starters wait for."""
    await conn.execute(migrate.POSTGRES_LOCK, migrate.POSTGRES_LOCK_KEY)
    await conn.execute(migrate.CREATE_POSTGRES_TABLE)
    done = {r[0] for r in await conn.fetch(migrate.APPLIED)}
    applied = []
    for m in migrate.migrations("postgres"):
        if m.version in done:
            continue
        await conn.execute(m.sql)
        await conn.execute(migrate.POSTGRES_RECORD, m.version, m.name, int(time.time()))
        applied.append(m.version)
    return applied
