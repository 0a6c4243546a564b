"""The SQLite adapter (WAL). Writes go through one connection on one dedicated thread, each method one short
transaction; reads use a second connection on a second thread, so an API read never queues behind the
worker's writes (WAL readers don't block on the writer). The SQL is in queries.py, one named query each."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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
from batchgate.store import live_rows, migrate, rows
from batchgate.store import webhook_rows as hooks
from batchgate.store.base import ChunkHeartbeat, KeyInfo, Page
from batchgate.store.sqlite import queries as q

R = TypeVar("R")
Params = Sequence[Any] | dict[str, Any]


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._rdb: sqlite3.Connection | None = None  # quick reads, on the caller's loop
        self._bdb: sqlite3.Connection | None = None  # bulk reads, on their own thread
        self._bpool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")
        self.applied_migrations: list[int] = []

    # -- plumbing -----------------------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            await self._run(self._open)
        except (OSError, sqlite3.Error) as e:
            raise BackendUnavailable(f"cannot open the SQLite database {self._path}: {failure_reason(e)}") from e

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA foreign_keys=ON")
        self.applied_migrations = _migrate(db)
        self._db = db
        self._rdb, self._bdb = self._read_only(), self._read_only()

    def _read_only(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA query_only=ON")
        return db

    async def close(self) -> None:
        if self._rdb is not None:
            self._rdb.close()
            self._rdb = None
        if self._bdb is not None:
            await asyncio.get_running_loop().run_in_executor(self._bpool, self._bdb.close)
            self._bdb = None
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)
        self._bpool.shutdown(wait=True)

    async def _read(self, fn: Callable[..., R], *args: Any) -> R:
        """A quick read (an indexed lookup or a page) runs on the caller's loop: in WAL mode it never waits
        for the writer, and it takes less time than handing it to a thread and back (two GIL handoffs, each
        up to a switch interval while the worker thread is busy)."""
        return fn(*args)

    async def _bulk(self, sql: str, params: Params) -> list[Any]:
        """A read of many rows (results, done lines) runs on its own thread and connection."""
        db = self._bdb
        if db is None:
            raise RuntimeError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(
            self._bpool, lambda: db.execute(sql, params).fetchall()
        )

    @property
    def _reader(self) -> sqlite3.Connection:
        if self._rdb is None:
            raise RuntimeError("store is not open")
        return self._rdb

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _tx(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """Run `fn` inside BEGIN IMMEDIATE ... COMMIT on the store thread."""

        def run() -> R:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out

        return await self._run(run)

    async def _one(self, sql: str, params: Params = ()) -> Any:
        return await self._read(lambda: self._reader.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Params = ()) -> list[Any]:
        return await self._read(lambda: self._reader.execute(sql, params).fetchall())

    async def _exec(self, sql: str, params: Params = ()) -> int:
        """One write statement in its own transaction; the rows it touched."""
        return await self._tx(lambda db: db.execute(sql, params).rowcount)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # -- keys ---------------------------------------------------------------------------------------------
    async def create_key(self, key_id: str, project: str, key_hash: str, admin: bool, now: int) -> None:
        await self._exec(q.INSERT_KEY, (key_id, project, key_hash, int(admin), now))

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        r = await self._one(q.FIND_KEY, (key_hash,))
        return KeyInfo(r[0], r[1], bool(r[2])) if r else None

    async def has_keys(self) -> bool:
        return bool(await self._one(q.HAS_KEYS))

    async def list_keys(self) -> list[KeyInfo]:
        return [KeyInfo(r[0], r[1], bool(r[2]), r[3]) for r in await self._all(q.LIST_KEYS)]

    async def delete_key(self, key_id: str) -> bool:
        return await self._exec(q.DELETE_KEY, (key_id,)) > 0

    # -- projects -----------------------------------------------------------------------------------------
    async def set_project_weight(self, project: str, weight: float, now: int) -> None:
        await self._exec(q.SET_PROJECT_WEIGHT, (project, weight, now))

    async def project_weights(self) -> dict[str, float]:
        return {r[0]: float(r[1]) for r in await self._all(q.PROJECT_WEIGHTS)}

    # -- files --------------------------------------------------------------------------------------------
    async def insert_file(self, f: StoredFile) -> None:
        await self._exec(q.INSERT_FILE, (f.id, f.project, f.bytes, f.created_at, f.filename, f.purpose, f.expires_at))

    async def get_file(self, file_id: str) -> StoredFile | None:
        r = await self._one(q.GET_FILE, (file_id,))
        return rows.file_from_row(r) if r else None

    async def list_files(
        self, project: str | None, purpose: str | None, ascending: bool, after: str | None, limit: int, now: int
    ) -> Page[StoredFile]:
        def read(db: sqlite3.Connection) -> Page[StoredFile]:
            seq = None
            if after is not None:
                row = db.execute(q.FILE_SEQ, {"id": after, "project": project}).fetchone()
                if row is None:
                    return Page([], False)
                seq = row[0]
            found = db.execute(q.LIST_FILES_ASC if ascending else q.LIST_FILES_DESC, {
                "project": project, "now": now, "purpose": purpose, "seq": seq, "limit": limit + 1,
            }).fetchall()
            return Page([rows.file_from_row(r) for r in found[:limit]], len(found) > limit)

        return await self._read(read, self._reader)

    async def delete_file(self, file_id: str) -> bool:
        return await self._exec(q.DELETE_FILE, (file_id,)) > 0

    async def input_file(self, batch_id: str) -> StoredFile | None:
        r = await self._one(q.INPUT_FILE, (batch_id,))
        return rows.file_from_row(r) if r else None

    async def purgeable_files(self, now: int, limit: int, file_id: str | None = None) -> list[str]:
        if file_id is not None:
            return [r[0] for r in await self._all(q.PURGEABLE_FILE, (file_id, now))]
        return [r[0] for r in await self._all(q.PURGEABLE_FILES, (now, limit))]

    async def mark_purged(self, file_id: str) -> None:
        await self._exec(q.MARK_PURGED, (file_id,))

    # -- uploads ------------------------------------------------------------------------------------------
    async def insert_upload(self, u: Upload) -> None:
        await self._exec(q.INSERT_UPLOAD, (u.id, u.project, u.bytes, u.created_at, u.expires_at, u.filename,
                                           u.purpose, u.mime_type, u.status.value, u.file_expires_after, u.file_id))

    async def get_upload(self, upload_id: str) -> Upload | None:
        r = await self._one(q.GET_UPLOAD, (upload_id,))
        return rows.upload_from_row(r) if r else None

    async def insert_part(self, p: UploadPart) -> None:
        await self._exec(q.INSERT_PART, (p.id, p.upload_id, p.created_at, p.bytes, p.md5))

    async def get_parts(self, upload_id: str) -> list[UploadPart]:
        return [rows.part_from_row(r) for r in await self._all(q.GET_PARTS, (upload_id,))]

    async def set_upload_status(self, upload_id: str, status: UploadStatus, file_id: str | None = None) -> bool:
        return await self._exec(q.SET_UPLOAD_STATUS, (status.value, file_id, upload_id)) > 0

    # -- batches: API side --------------------------------------------------------------------------------
    async def insert_batch(self, b: Batch) -> None:
        await self._exec(q.INSERT_BATCH, rows.batch_to_params(b))

    async def insert_retry(self, b: Batch) -> Batch:
        only = b.retry_only.value if b.retry_only is not None else None

        def write(db: sqlite3.Connection) -> Batch:
            db.execute(q.INSERT_RETRY, rows.batch_to_params(b))
            return rows.batch_from_row(db.execute(q.RETRY_OF, (b.retried_from, only)).fetchone())

        return await self._tx(write)

    async def get_batch(self, batch_id: str) -> Batch | None:
        r = await self._one(q.GET_BATCH, (batch_id,))
        return rows.batch_from_row(r) if r else None

    async def list_batches(
        self, project: str | None, after: str | None, limit: int, status: BatchStatus | None = None, *,
        endpoint: str | None = None, other_than: str | None = None, before: str | None = None,
    ) -> Page[Batch]:
        def read(db: sqlite3.Connection) -> Page[Batch]:
            seq = None
            cursor = before if before is not None else after
            if cursor is not None:
                row = db.execute(q.BATCH_SEQ, {"id": cursor, "project": project}).fetchone()
                if row is None:
                    return Page([], False)
                seq = row[0]
            found = db.execute(q.LIST_BATCHES_NEWER if before is not None else q.LIST_BATCHES, {
                "project": project, "status": status.value if status else None, "seq": seq, "limit": limit + 1,
                "endpoint": endpoint, "other_than": other_than,
            }).fetchall()
            page = [rows.batch_from_row(r) for r in found[:limit]]
            return Page(page[::-1] if before is not None else page, len(found) > limit)

        return await self._read(read, self._reader)

    async def enqueued_tokens(self, project: str, model: str) -> int:
        r = await self._one(q.ENQUEUED_TOKENS, (project, model))
        return int(r[0])

    async def count_batches_by_status(self, project: str | None = None) -> dict[BatchStatus, int]:
        # a scan of every batch, at scrape time: not on the API's loop
        found = await self._bulk(q.COUNT_BATCHES_BY_STATUS, {"project": project})
        return {BatchStatus(r[0]): int(r[1]) for r in found}

    async def pause_batch(self, batch_id: str, now: int) -> Batch | None:
        return await self._update_batch(q.PAUSE_BATCH, (now, batch_id), batch_id)

    async def resume_batch(self, batch_id: str) -> Batch | None:
        return await self._update_batch(q.RESUME_BATCH, (batch_id,), batch_id)

    async def _update_batch(self, sql: str, params: tuple[Any, ...], batch_id: str) -> Batch | None:
        def write(db: sqlite3.Connection) -> Batch | None:
            db.execute(sql, params)
            r = db.execute(q.GET_BATCH, (batch_id,)).fetchone()
            return rows.batch_from_row(r) if r else None

        return await self._tx(write)

    async def request_cancel(self, batch_id: str, now: int) -> Batch | None:
        def write(db: sqlite3.Connection) -> Batch | None:
            db.execute(q.REQUEST_CANCEL, (now, batch_id))
            r = db.execute(q.GET_BATCH, (batch_id,)).fetchone()
            return rows.batch_from_row(r) if r else None

        return await self._tx(write)

    async def delete_batch(self, batch_id: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute(q.DELETE_BATCH, (batch_id,)).rowcount == 0:
                return False
            db.execute(q.DELETE_CHUNKS, (batch_id,))
            db.execute(q.DROP_RESULTS, (batch_id,))
            return True

        return await self._tx(write)

    # -- batches: worker side -----------------------------------------------------------------------------
    async def mark_expiring(self, now: int) -> int:
        return await self._exec(q.MARK_EXPIRING, (now,))

    async def claim_batch_task(self, owner: str, now: float, lease: float) -> BatchTask | None:
        def write(db: sqlite3.Connection) -> BatchTask | None:
            picked = db.execute(q.PICK_BATCH_TASK, {"now": now}).fetchone()
            if picked is None:
                return None
            batch_id, status = picked
            db.execute(q.LEASE_BATCH, (owner, now + lease, batch_id))
            if status != "validating":
                db.execute(q.FENCE_CHUNKS, (batch_id,))
            row = db.execute(q.LEASED_BATCH, (batch_id,)).fetchone()
            kind = TaskKind.VALIDATE if status == "validating" else TaskKind.FINALIZE
            return BatchTask(kind, rows.batch_from_row(row), row[-2], bool(row[-1]))

        return await self._tx(write)

    async def renew_batch(self, batch_id: str, generation: int, until: float) -> BatchStatus | None:
        def write(db: sqlite3.Connection) -> BatchStatus | None:
            if db.execute(q.RENEW_BATCH, (until, batch_id, generation)).rowcount == 0:
                return None
            return BatchStatus(db.execute(q.BATCH_STATUS, (batch_id,)).fetchone()[0])

        return await self._tx(write)

    async def start_batch(
        self, batch_id: str, generation: int, chunks: Sequence[ChunkSpec], model: str | None, now: int,
        prompt_tokens: int = 0,
    ) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            total = sum(c.requests for c in chunks)
            if db.execute(q.START_BATCH, (total, model, prompt_tokens, now, batch_id, generation)).rowcount == 0:
                return False
            db.executemany(q.INSERT_CHUNKS, [
                (batch_id, c.index, c.first_line, c.last_line, c.byte_start, c.byte_end, c.requests) for c in chunks
            ])
            return True

        return await self._tx(write)

    async def fail_batch(self, batch_id: str, generation: int, errors: Sequence[BatchError], now: int) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute(q.FAIL_BATCH, (now, rows.errors_json(errors), batch_id, generation)).rowcount == 0:
                return False
            _emit(db, batch_id, BatchStatus.FAILED, now)  # same transaction: exactly one event
            return True

        return await self._tx(write)

    async def enter_finalizing(self, batch_id: str, generation: int, now: int) -> bool:
        return await self._exec(q.ENTER_FINALIZING, (now, batch_id, generation)) > 0

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
        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(q.finish_batch(status), (
                status.value, now, output_file_id, error_file_id, counts.total, counts.completed, counts.failed,
                counts.not_run, rows.error_counts_json(error_counts), batch_id, generation,
            ))
            if cur.rowcount == 0:
                return False
            _emit(db, batch_id, status, now)  # same transaction: exactly one event
            return True

        return await self._tx(write)

    async def renew_chunks(self, claims: Sequence[tuple[str, int, int]], until: float) -> ChunkHeartbeat:
        def write(db: sqlite3.Connection) -> ChunkHeartbeat:
            lost = set()
            for batch_id, idx, gen in claims:
                if db.execute(q.RENEW_CHUNKS, (until, batch_id, idx, gen)).rowcount == 0:
                    lost.add((batch_id, idx))
            ids = sorted({c[0] for c in claims})
            found = []
            if ids:
                found = db.execute(q.STOPPED_BATCHES.format(ids=",".join("?" * len(ids))), ids).fetchall()
            return ChunkHeartbeat(frozenset(lost), frozenset(r[0] for r in found if r[1]),
                                  frozenset(r[0] for r in found if not r[1]))

        return await self._tx(write)

    async def record_results(
        self, batch_id: str, chunk: int, generation: int, results: Sequence[RequestResult]
    ) -> bool:
        return (await self.record_results_of([ResultGroup(batch_id, chunk, generation, results)]))[0]

    async def record_results_of(self, groups: Sequence[ResultGroup]) -> list[bool]:
        if not groups:
            return []
        return await self._tx(lambda db: [_record(db, g) for g in groups])

    async def done_lines(self, batch_id: str, first_line: int, last_line: int) -> set[int]:
        return {r[0] for r in await self._bulk(q.DONE_LINES, (batch_id, first_line, last_line))}

    async def recorded_lines(self, batch_id: str, ok: bool | None = None) -> set[int]:
        found = await self._bulk(q.RECORDED_LINES, {"id": batch_id, "ok": None if ok is None else int(ok)})
        return {r[0] for r in found}

    async def complete_chunk(self, batch_id: str, chunk: int, generation: int, now: int) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute(q.COMPLETE_CHUNK, (batch_id, chunk, generation)).rowcount == 0:
                return False
            db.execute(q.FINALIZE_IF_ALL_DONE, {"id": batch_id, "now": now})
            return True

        return await self._tx(write)

    async def release_chunk(self, batch_id: str, chunk: int, generation: int) -> None:
        await self._exec(q.RELEASE_CHUNK, (batch_id, chunk, generation))

    async def chunk_failed(self, batch_id: str, chunk: int, generation: int, retry_at: float) -> bool:
        return await self._exec(q.CHUNK_FAILED, (retry_at, batch_id, chunk, generation)) > 0

    async def results_in(self, batch_id: str, first_line: int, last_line: int) -> list[tuple[int, bool, bytes]]:
        found = await self._bulk(q.RESULTS_IN, (batch_id, first_line, last_line))
        return [(r[0], bool(r[1]), bytes(r[2])) for r in found]

    async def chunk_specs(self, batch_id: str) -> list[ChunkSpec]:
        return [rows.chunk_from_row(r) for r in await self._all(q.CHUNK_SPECS, (batch_id,))]

    async def drop_results(self, batch_id: str) -> None:
        await self._exec(q.DROP_RESULTS, (batch_id,))

    async def record_final_lines(self, batch_id: str, generation: int, lines: Sequence[tuple[int, bytes]]) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            r = db.execute(q.BATCH_GENERATION, (batch_id,)).fetchone()
            if r is None or r[0] != generation:
                return False
            base = seq = db.execute(q.RECORDED, (batch_id,)).fetchone()[0]
            for line, data in lines:
                if db.execute(q.INSERT_RESULTS, (batch_id, line, 0, data, seq + 1)).rowcount > 0:
                    seq += 1
            if seq != base:
                db.execute(q.SET_RECORDED, (seq, batch_id))
            return True

        return await self._tx(write)

    async def keep_results(self, batch_id: str, until: int) -> None:
        await self._exec(q.KEEP_RESULTS, (until, batch_id))

    async def drop_kept_results(self, now: int, limit: int) -> int:
        def write(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute(q.RESULTS_TO_DROP, (now, limit)).fetchall()]
            for batch_id in ids:
                db.execute(q.DROP_RESULTS, (batch_id,))
                db.execute(q.RESULTS_DROPPED, (batch_id,))
            return len(ids)

        return await self._tx(write)

    # -- following results ----------------------------------------------------------------------------------
    async def result_head(self, batch_id: str) -> ResultHead | None:
        r = await self._one(q.RESULT_HEAD, (batch_id,))
        return live_rows.head_from_row(r) if r else None

    async def results_after(self, batch_id: str, after: int, limit: int) -> list[FeedLine]:
        return [live_rows.line_from_row(r) for r in await self._bulk(q.RESULTS_AFTER, (batch_id, after, limit))]

    # -- idempotency keys -----------------------------------------------------------------------------------
    async def claim_idempotency_key(self, k: IdempotencyRecord, now: int, stale_before: int) -> IdempotencyRecord:
        def write(db: sqlite3.Connection) -> IdempotencyRecord:
            if db.execute(q.INSERT_IDEMPOTENCY_KEY, live_rows.key_params(k)).rowcount == 0:
                db.execute(q.TAKE_OVER_IDEMPOTENCY_KEY, live_rows.take_over_params(k, now, stale_before))
            return live_rows.key_from_row(db.execute(q.GET_IDEMPOTENCY_KEY, (k.project, k.key)).fetchone())

        return await self._tx(write)

    async def set_idempotency_object(self, project: str, key: str, owner: str, object_id: str) -> bool:
        return await self._exec(q.SET_IDEMPOTENCY_OBJECT, (object_id, project, key, owner)) > 0

    async def release_idempotency_key(self, project: str, key: str, owner: str) -> None:
        await self._exec(q.RELEASE_IDEMPOTENCY_KEY, (project, key, owner))

    async def purge_idempotency_keys(self, now: int) -> int:
        return await self._exec(q.PURGE_IDEMPOTENCY_KEYS, (now,))

    # -- scheduling ---------------------------------------------------------------------------------------
    async def schedule_snapshot(self, now: float) -> list[BatchLoad]:
        return [rows.load_from_row(r) for r in await self._all(q.SCHEDULE_SNAPSHOT, {"now": now})]

    async def claim_chunks_of(
        self, owner: str, now: float, lease: float, wants: Sequence[tuple[str, int]]
    ) -> list[ChunkClaim]:
        merged = rows.merged_wants(wants)

        def write(db: sqlite3.Connection) -> list[ChunkClaim]:
            claims: list[ChunkClaim] = []
            for batch_id, n in merged:
                runnable = db.execute(q.CLAIMABLE_BATCH, (batch_id,)).fetchone()
                if runnable is None:
                    continue
                endpoint, input_file_id = runnable
                wanted = {"batch_id": batch_id, "now": now, "limit": n}
                for r in db.execute(q.CLAIMABLE_CHUNKS, wanted).fetchall():
                    db.execute(q.LEASE_CHUNK, (owner, now + lease, batch_id, r[0]))
                    gen = db.execute(q.CHUNK_GENERATION, (batch_id, r[0])).fetchone()[0]
                    claims.append(ChunkClaim(batch_id, endpoint, input_file_id, rows.chunk_from_row(r[:6]), gen, r[6]))
            return claims

        return await self._tx(write) if merged else []

    async def set_estimates(self, estimates: Sequence[tuple[str, int | None]]) -> None:
        latest = dict(estimates)  # a batch named twice: its last estimate
        if latest:
            await self._tx(lambda db: db.executemany(q.SET_ESTIMATES, [(at, i) for i, at in latest.items()]))

    async def set_at_risk(self, marks: Sequence[tuple[str, int | None]]) -> None:
        latest = dict(marks)  # a batch named twice: its last mark
        if latest:
            await self._tx(lambda db: db.executemany(
                q.SET_AT_RISK, [{"id": i, "since": since} for i, since in latest.items()]))

    # -- webhooks -----------------------------------------------------------------------------------------
    async def create_webhook(self, e: WebhookEndpoint) -> None:
        await self._exec(q.INSERT_ENDPOINT, hooks.endpoint_params(e))

    async def list_webhooks(self, project: str | None) -> list[WebhookEndpoint]:
        return [hooks.endpoint_from_row(r) for r in await self._all(q.LIST_ENDPOINTS, {"project": project})]

    async def delete_webhook(self, webhook_id: str, project: str | None) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            if db.execute(q.DELETE_ENDPOINT, {"id": webhook_id, "project": project}).rowcount == 0:
                return False
            db.execute(q.DISCARD_PENDING, (webhook_id,))
            return True

        return await self._tx(write)

    async def claim_deliveries(self, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]:
        if await self._one(q.ANY_DUE_DELIVERY, {"now": now}) is None:
            return []

        def write(db: sqlite3.Connection) -> list[DeliveryClaim]:
            claims = []
            for (delivery_id,) in db.execute(q.DUE_DELIVERIES, {"now": now, "limit": limit}).fetchall():
                db.execute(q.LEASE_DELIVERY, (owner, now + lease, delivery_id))
                claims.append(hooks.claim_from_row(db.execute(q.CLAIMED_DELIVERY, (delivery_id,)).fetchone()))
            return claims

        return await self._tx(write)

    async def record_attempt(
        self, delivery_id: str, generation: int, attempt: DeliveryAttempt | None, status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                q.RECORD_ATTEMPT, (status.value, next_attempt_at, int(attempt is not None), delivery_id, generation)
            )
            if cur.rowcount == 0:
                return False
            if attempt is not None:
                db.execute(q.INSERT_ATTEMPT, hooks.attempt_params(delivery_id, attempt))
            return True

        return await self._tx(write)

    async def deliveries_for_batch(self, batch_id: str) -> list[WebhookDelivery]:
        def read(db: sqlite3.Connection) -> list[WebhookDelivery]:
            found = db.execute(q.DELIVERIES_OF_BATCH, (batch_id,)).fetchall()
            by_delivery: dict[str, list[DeliveryAttempt]] = {}
            for a in db.execute(q.ATTEMPTS_OF_BATCH, (batch_id,)).fetchall():
                by_delivery.setdefault(a[0], []).append(hooks.attempt_from_row(a))
            return [hooks.delivery_from_row(r, by_delivery.get(r[0], ())) for r in found]

        return await self._read(read, self._reader)

    # -- leases of gone processes -------------------------------------------------------------------------
    async def lease_owners(self) -> set[str]:
        return {r[0] for r in await self._all(q.LEASE_OWNERS)}

    async def release_owner(self, owner: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(q.RELEASE_OWNER_CHUNKS, (owner,))
            db.execute(q.RELEASE_OWNER_BATCHES, (owner,))

        await self._tx(write)


def _record(db: sqlite3.Connection, g: ResultGroup) -> bool:
    """One group of record_results_of, inside its transaction."""
    r = db.execute(q.CHUNK_GENERATION, (g.batch_id, g.chunk)).fetchone()
    if r is None or r[0] != g.generation:
        return False
    base = seq = db.execute(q.RECORDED, (g.batch_id,)).fetchone()[0]
    new = []
    for res in g.results:  # each new result takes the next recording number (domain/results_feed.py)
        if db.execute(q.INSERT_RESULTS, (g.batch_id, res.line, int(res.ok), res.data, seq + 1)).rowcount > 0:
            seq += 1
            new.append(res.line)
    if seq != base:
        db.execute(q.SET_RECORDED, (seq, g.batch_id))
    db.execute(q.ADD_COUNTS, (*rows.tally_params(tally(g.results, new)), g.batch_id))
    return True


def _emit(db: sqlite3.Connection, batch_id: str, status: BatchStatus, now: int) -> None:
    """Queue the event of `batch_id` entering terminal `status` for each endpoint of its project that wants it,
    in the transaction that enters the status: exactly one event per transition."""
    found = db.execute(q.ENDPOINTS_OF_BATCH, (batch_id,)).fetchall()
    endpoints = [(r[1], r[2], r[3]) for r in found if r[1] is not None]
    if not endpoints:
        return
    planned = hooks.planned_deliveries(endpoints, found[0][0], batch_id, status, now)
    if planned:
        db.executemany(q.INSERT_DELIVERIES, planned)


def _migrate(db: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own BEGIN IMMEDIATE transaction (other starters wait)."""
    db.execute(migrate.CREATE_SQLITE_TABLE)
    applied = []
    for m in migrate.migrations("sqlite"):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute(migrate.SQLITE_IS_APPLIED, (m.version,)).fetchone() is None:
                for statement in migrate.sqlite_statements(m.sql):
                    db.execute(statement)
                db.execute(migrate.SQLITE_RECORD, (m.version, m.name))
                db.execute(f"PRAGMA user_version={m.version}")
                applied.append(m.version)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return applied
