"""The SQLite adapter (WAL). Writes go through one connection on one dedicated thread, each method one short
transaction; reads use a second connection on a second thread, so an API read never queues behind the
worker's writes (WAL readers don't block on the writer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from batchgate.domain.batch import Batch, BatchError, RequestCounts
from batchgate.domain.files import StoredFile, Upload, UploadPart, UploadStatus
from batchgate.domain.status import CANCELLABLE, BatchStatus, sources_of
from batchgate.domain.webhooks import DeliveryAttempt, DeliveryClaim, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from batchgate.domain.work import BatchTask, ChunkClaim, ChunkSpec, RequestResult, TaskKind
from batchgate.store import migrate, rows
from batchgate.store import sqlite_webhooks as webhooks
from batchgate.store.base import ChunkHeartbeat, KeyInfo, Page

R = TypeVar("R")

# Claims go batch by batch, oldest first, and take each one's open chunks in index order straight from the
# chunks_open index: a claim reads the chunks it takes (and those leased to others), not every open chunk of
# every batch joined and sorted, which made each claim O(chunks) and a 1,000,000-line batch's claims O(n^2).
CLAIMABLE_BATCHES = (
    "SELECT id, endpoint, input_file_id FROM batches WHERE status = 'in_progress' AND expiring = 0 ORDER BY seq"
)
CLAIMABLE_CHUNKS = (
    f"SELECT {rows.CHUNK_COLUMNS} FROM chunks WHERE done = 0 AND batch_id = ? AND lease_until < ? "
    "ORDER BY idx LIMIT ?"
)


def _in(values: Sequence[str]) -> str:
    return "(" + ",".join("'" + v + "'" for v in values) + ")"


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
        await self._run(self._open)

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

    async def _bulk(self, sql: str, params: Sequence[Any]) -> list[Any]:
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

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._read(lambda: self._reader.execute(sql, params).fetchone())

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._read(lambda: self._reader.execute(sql, params).fetchall())

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # -- keys ---------------------------------------------------------------------------------------------
    async def create_key(self, key_id: str, project: str, key_hash: str, admin: bool, now: int) -> None:
        await self._tx(lambda db: db.execute(
            "INSERT INTO api_keys (id, project, key_hash, admin, created_at) VALUES (?, ?, ?, ?, ?)",
            (key_id, project, key_hash, int(admin), now),
        ))

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        r = await self._one("SELECT id, project, admin FROM api_keys WHERE key_hash = ?", (key_hash,))
        return KeyInfo(r[0], r[1], bool(r[2])) if r else None

    async def has_keys(self) -> bool:
        return bool(await self._one("SELECT 1 FROM api_keys LIMIT 1"))

    async def list_keys(self) -> list[KeyInfo]:
        found = await self._all("SELECT id, project, admin, created_at FROM api_keys ORDER BY created_at, id")
        return [KeyInfo(r[0], r[1], bool(r[2]), r[3]) for r in found]

    async def delete_key(self, key_id: str) -> bool:
        cur = await self._tx(lambda db: db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)))
        return cur.rowcount > 0

    # -- files --------------------------------------------------------------------------------------------
    async def insert_file(self, f: StoredFile) -> None:
        await self._tx(lambda db: db.execute(
            f"INSERT INTO files ({rows.FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (f.id, f.project, f.bytes, f.created_at, f.filename, f.purpose, f.expires_at),
        ))

    async def get_file(self, file_id: str) -> StoredFile | None:
        r = await self._one(f"SELECT {rows.FILE_COLUMNS} FROM files WHERE id = ? AND deleted = 0", (file_id,))
        return rows.file_from_row(r) if r else None

    async def list_files(
        self, project: str | None, purpose: str | None, ascending: bool, after: str | None, limit: int, now: int
    ) -> Page[StoredFile]:
        def q(db: sqlite3.Connection) -> Page[StoredFile]:
            where = ["(? IS NULL OR project = ?)", "deleted = 0", "(expires_at IS NULL OR expires_at > ?)"]
            params: list[Any] = [project, project, now]
            if purpose is not None:
                where.append("purpose = ?")
                params.append(purpose)
            if after is not None:
                row = db.execute(
                    "SELECT seq FROM files WHERE id = ? AND (? IS NULL OR project = ?)", (after, project, project)
                ).fetchone()
                if row is None:
                    return Page([], False)
                where.append("seq > ?" if ascending else "seq < ?")
                params.append(row[0])
            order = "ASC" if ascending else "DESC"
            found = db.execute(
                f"SELECT {rows.FILE_COLUMNS} FROM files WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            return Page([rows.file_from_row(r) for r in found[:limit]], len(found) > limit)

        return await self._read(q, self._reader)

    async def delete_file(self, file_id: str) -> bool:
        cur = await self._tx(lambda db: db.execute(
            "UPDATE files SET deleted = 1 WHERE id = ? AND deleted = 0", (file_id,)
        ))
        return cur.rowcount > 0

    async def expired_files(self, now: int, limit: int) -> list[StoredFile]:
        found = await self._all(
            f"SELECT {rows.FILE_COLUMNS} FROM files WHERE deleted = 0 AND expires_at IS NOT NULL "
            "AND expires_at <= ? LIMIT ?",
            (now, limit),
        )
        return [rows.file_from_row(r) for r in found]

    # -- uploads ------------------------------------------------------------------------------------------
    async def insert_upload(self, u: Upload) -> None:
        await self._tx(lambda db: db.execute(
            f"INSERT INTO uploads ({rows.UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (u.id, u.project, u.bytes, u.created_at, u.expires_at, u.filename, u.purpose, u.mime_type,
             u.status.value, u.file_expires_after, u.file_id),
        ))

    async def get_upload(self, upload_id: str) -> Upload | None:
        r = await self._one(f"SELECT {rows.UPLOAD_COLUMNS} FROM uploads WHERE id = ?", (upload_id,))
        return rows.upload_from_row(r) if r else None

    async def insert_part(self, p: UploadPart) -> None:
        await self._tx(lambda db: db.execute(
            "INSERT INTO upload_parts (id, upload_id, created_at, bytes, md5) VALUES (?, ?, ?, ?, ?)",
            (p.id, p.upload_id, p.created_at, p.bytes, p.md5),
        ))

    async def get_parts(self, upload_id: str) -> list[UploadPart]:
        found = await self._all(
            "SELECT id, upload_id, created_at, bytes, md5 FROM upload_parts WHERE upload_id = ?", (upload_id,)
        )
        return [rows.part_from_row(r) for r in found]

    async def set_upload_status(self, upload_id: str, status: UploadStatus, file_id: str | None = None) -> bool:
        cur = await self._tx(lambda db: db.execute(
            "UPDATE uploads SET status = ?, file_id = ? WHERE id = ? AND status = 'pending'",
            (status.value, file_id, upload_id),
        ))
        return cur.rowcount > 0

    # -- batches: API side --------------------------------------------------------------------------------
    async def insert_batch(self, b: Batch) -> None:
        marks = ", ".join("?" * len(rows.BATCH_COLUMNS.split(",")))
        await self._tx(lambda db: db.execute(
            f"INSERT INTO batches ({rows.BATCH_COLUMNS}) VALUES ({marks})", rows.batch_to_params(b)
        ))

    async def get_batch(self, batch_id: str) -> Batch | None:
        r = await self._one(f"SELECT {rows.BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
        return rows.batch_from_row(r) if r else None

    async def list_batches(self, project: str | None, after: str | None, limit: int) -> Page[Batch]:
        def q(db: sqlite3.Connection) -> Page[Batch]:
            params: list[Any] = [project, project]
            where = "(? IS NULL OR project = ?)"
            if after is not None:
                row = db.execute(
                    "SELECT seq FROM batches WHERE id = ? AND (? IS NULL OR project = ?)", (after, project, project)
                ).fetchone()
                if row is None:
                    return Page([], False)
                where += " AND seq < ?"
                params.append(row[0])
            found = db.execute(
                f"SELECT {rows.BATCH_COLUMNS} FROM batches WHERE {where} ORDER BY seq DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            return Page([rows.batch_from_row(r) for r in found[:limit]], len(found) > limit)

        return await self._read(q, self._reader)

    async def enqueued_tokens(self, project: str, model: str) -> int:
        r = await self._one(
            "SELECT COALESCE(SUM(prompt_tokens), 0) FROM batches WHERE project = ? AND model = ? "
            "AND status IN ('in_progress', 'finalizing')",
            (project, model),
        )
        return int(r[0])

    async def count_batches_by_status(self, project: str | None = None) -> dict[BatchStatus, int]:
        found = await self._bulk(  # a scan of every batch, at scrape time: not on the API's loop
            "SELECT status, COUNT(*) FROM batches WHERE (? IS NULL OR project = ?) GROUP BY status", (project, project)
        )
        return {BatchStatus(r[0]): int(r[1]) for r in found}

    async def request_cancel(self, batch_id: str, now: int) -> Batch | None:
        def q(db: sqlite3.Connection) -> Batch | None:
            db.execute(
                "UPDATE batches SET status = 'cancelling', cancelling_at = ? "
                f"WHERE id = ? AND status IN {_in(sorted(CANCELLABLE))}",
                (now, batch_id),
            )
            r = db.execute(f"SELECT {rows.BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
            return rows.batch_from_row(r) if r else None

        return await self._tx(q)

    # -- batches: worker side -----------------------------------------------------------------------------
    async def mark_expiring(self, now: int) -> int:
        cur = await self._tx(lambda db: db.execute(
            "UPDATE batches SET expiring = 1 WHERE status = 'in_progress' AND expiring = 0 AND expires_at <= ?",
            (now,),
        ))
        return cur.rowcount

    async def claim_batch_task(self, owner: str, now: float, lease: float) -> BatchTask | None:
        def q(db: sqlite3.Connection) -> BatchTask | None:
            r = db.execute(
                "SELECT id, status FROM batches b WHERE lease_until < :now AND ("
                "  status = 'validating'"
                "  OR (status IN ('finalizing', 'cancelling')"
                "      OR (status = 'in_progress' AND (expiring = 1 OR NOT EXISTS ("
                "          SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND c.done = 0))))"
                "     AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND c.done = 0"
                "                     AND c.lease_until >= :now)"
                ") ORDER BY seq LIMIT 1",
                {"now": now},
            ).fetchone()
            if r is None:
                return None
            batch_id, status = r
            db.execute(
                "UPDATE batches SET lease_owner = ?, lease_until = ?, generation = generation + 1 WHERE id = ?",
                (owner, now + lease, batch_id),
            )
            if status != "validating":
                # Fence out any worker still holding a stale claim on this batch's chunks.
                db.execute(
                    "UPDATE chunks SET generation = generation + 1, lease_until = 0 WHERE batch_id = ? AND done = 0",
                    (batch_id,),
                )
            row = db.execute(
                f"SELECT {rows.BATCH_COLUMNS}, generation, expiring FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
            kind = TaskKind.VALIDATE if status == "validating" else TaskKind.FINALIZE
            return BatchTask(kind, rows.batch_from_row(row), row[-2], bool(row[-1]))

        return await self._tx(q)

    async def renew_batch(self, batch_id: str, generation: int, until: float) -> BatchStatus | None:
        def q(db: sqlite3.Connection) -> BatchStatus | None:
            cur = db.execute(
                "UPDATE batches SET lease_until = ? WHERE id = ? AND generation = ?", (until, batch_id, generation)
            )
            if cur.rowcount == 0:
                return None
            return BatchStatus(db.execute("SELECT status FROM batches WHERE id = ?", (batch_id,)).fetchone()[0])

        return await self._tx(q)

    async def start_batch(
        self, batch_id: str, generation: int, chunks: Sequence[ChunkSpec], model: str | None, now: int,
        prompt_tokens: int = 0,
    ) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE batches SET total = ?, model = ?, lease_until = 0, prompt_tokens = ?, "
                "in_progress_at = CASE WHEN status = 'validating' THEN ? ELSE in_progress_at END, "
                "status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END "
                "WHERE id = ? AND generation = ?",
                (sum(c.requests for c in chunks), model, prompt_tokens, now, batch_id, generation),
            )
            if cur.rowcount == 0:
                return False
            db.executemany(
                f"INSERT OR IGNORE INTO chunks (batch_id, {rows.CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(batch_id, c.index, c.first_line, c.last_line, c.byte_start, c.byte_end, c.requests)
                 for c in chunks],
            )
            return True

        return await self._tx(q)

    async def fail_batch(self, batch_id: str, generation: int, errors: Sequence[BatchError], now: int) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE batches SET status = 'failed', failed_at = ?, errors = ?, lease_until = 0 "
                f"WHERE id = ? AND generation = ? AND status IN {_in(sorted(sources_of(BatchStatus.FAILED)))}",
                (now, rows.errors_json(errors), batch_id, generation),
            )
            if cur.rowcount == 0:
                return False
            webhooks.emit(db, batch_id, BatchStatus.FAILED, now)  # same transaction: exactly one event
            return True

        return await self._tx(q)

    async def enter_finalizing(self, batch_id: str, generation: int, now: int) -> bool:
        cur = await self._tx(lambda db: db.execute(
            "UPDATE batches SET status = 'finalizing', finalizing_at = ? "
            "WHERE id = ? AND generation = ? AND status = 'in_progress'",
            (now, batch_id, generation),
        ))
        return cur.rowcount > 0

    async def finish_batch(
        self,
        batch_id: str,
        generation: int,
        status: BatchStatus,
        now: int,
        output_file_id: str | None,
        error_file_id: str | None,
        counts: RequestCounts,
    ) -> bool:
        ts = status.timestamp_field

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                f"UPDATE batches SET status = ?, {ts} = ?, output_file_id = ?, error_file_id = ?, "
                "total = ?, completed = ?, failed = ?, lease_until = 0 "
                f"WHERE id = ? AND generation = ? AND status IN {_in(sorted(sources_of(status)))}",
                (status.value, now, output_file_id, error_file_id, counts.total, counts.completed, counts.failed,
                 batch_id, generation),
            )
            if cur.rowcount == 0:
                return False
            webhooks.emit(db, batch_id, status, now)  # same transaction: exactly one event
            return True

        return await self._tx(q)

    async def claim_chunks(self, owner: str, now: float, lease: float, limit: int) -> list[ChunkClaim]:
        def q(db: sqlite3.Connection) -> list[ChunkClaim]:
            claims: list[ChunkClaim] = []
            for batch_id, endpoint, input_file_id in db.execute(CLAIMABLE_BATCHES).fetchall():
                for r in db.execute(CLAIMABLE_CHUNKS, (batch_id, now, limit - len(claims))).fetchall():
                    db.execute(
                        "UPDATE chunks SET lease_owner = ?, lease_until = ?, generation = generation + 1 "
                        "WHERE batch_id = ? AND idx = ?",
                        (owner, now + lease, batch_id, r[0]),
                    )
                    gen = db.execute(
                        "SELECT generation FROM chunks WHERE batch_id = ? AND idx = ?", (batch_id, r[0])
                    ).fetchone()[0]
                    claims.append(ChunkClaim(batch_id, endpoint, input_file_id, rows.chunk_from_row(r), gen))
                if len(claims) >= limit:
                    break
            return claims

        return await self._tx(q)

    async def renew_chunks(self, claims: Sequence[tuple[str, int, int]], until: float) -> ChunkHeartbeat:
        def q(db: sqlite3.Connection) -> ChunkHeartbeat:
            lost = set()
            for batch_id, idx, gen in claims:
                cur = db.execute(
                    "UPDATE chunks SET lease_until = ? WHERE batch_id = ? AND idx = ? AND generation = ? AND done = 0",
                    (until, batch_id, idx, gen),
                )
                if cur.rowcount == 0:
                    lost.add((batch_id, idx))
            ids = sorted({c[0] for c in claims})
            stop = set()
            if ids:
                marks = ",".join("?" * len(ids))
                stop = {r[0] for r in db.execute(
                    f"SELECT id FROM batches WHERE id IN ({marks}) AND (status != 'in_progress' OR expiring = 1)",
                    ids,
                )}
            return ChunkHeartbeat(frozenset(lost), frozenset(stop))

        return await self._tx(q)

    async def record_results(
        self, batch_id: str, chunk: int, generation: int, results: Sequence[RequestResult]
    ) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            r = db.execute("SELECT generation FROM chunks WHERE batch_id = ? AND idx = ?", (batch_id, chunk)).fetchone()
            if r is None or r[0] != generation:
                return False
            ok = bad = inp = cached = out = reasoning = total = retries = 0
            for res in results:
                cur = db.execute(
                    "INSERT OR IGNORE INTO results (batch_id, line, ok, data) VALUES (?, ?, ?, ?)",
                    (batch_id, res.line, int(res.ok), res.data),
                )
                if cur.rowcount == 0:
                    continue  # already recorded by an earlier claim: never counted twice
                if res.ok:
                    ok += 1
                else:
                    bad += 1
                u = res.usage
                inp, cached, out = inp + u.input_tokens, cached + u.cached_tokens, out + u.output_tokens
                reasoning, total = reasoning + u.reasoning_tokens, total + u.total_tokens
                retries += res.retries
            db.execute(
                "UPDATE batches SET completed = completed + ?, failed = failed + ?, input_tokens = input_tokens + ?, "
                "cached_tokens = cached_tokens + ?, output_tokens = output_tokens + ?, "
                "reasoning_tokens = reasoning_tokens + ?, total_tokens = total_tokens + ?, retries = retries + ? "
                "WHERE id = ?",
                (ok, bad, inp, cached, out, reasoning, total, retries, batch_id),
            )
            return True

        return await self._tx(q)

    async def done_lines(self, batch_id: str, first_line: int, last_line: int) -> set[int]:
        found = await self._bulk(
            "SELECT line FROM results WHERE batch_id = ? AND line BETWEEN ? AND ?", (batch_id, first_line, last_line)
        )
        return {r[0] for r in found}

    async def complete_chunk(self, batch_id: str, chunk: int, generation: int, now: int) -> bool:
        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE chunks SET done = 1, lease_until = 0 WHERE batch_id = ? AND idx = ? AND generation = ?",
                (batch_id, chunk, generation),
            )
            if cur.rowcount == 0:
                return False
            db.execute(
                "UPDATE batches SET status = 'finalizing', finalizing_at = ? "
                "WHERE id = ? AND status = 'in_progress' AND expiring = 0 "
                "AND NOT EXISTS (SELECT 1 FROM chunks WHERE batch_id = ? AND done = 0)",
                (now, batch_id, batch_id),
            )
            return True

        return await self._tx(q)

    async def release_chunk(self, batch_id: str, chunk: int, generation: int) -> None:
        await self._tx(lambda db: db.execute(
            "UPDATE chunks SET lease_until = 0 WHERE batch_id = ? AND idx = ? AND generation = ?",
            (batch_id, chunk, generation),
        ))

    async def results_in(self, batch_id: str, first_line: int, last_line: int) -> list[tuple[int, bool, bytes]]:
        found = await self._bulk(
            "SELECT line, ok, data FROM results WHERE batch_id = ? AND line BETWEEN ? AND ?",
            (batch_id, first_line, last_line),
        )
        return [(r[0], bool(r[1]), bytes(r[2])) for r in found]

    async def chunk_specs(self, batch_id: str) -> list[ChunkSpec]:
        found = await self._all(
            f"SELECT {rows.CHUNK_COLUMNS} FROM chunks WHERE batch_id = ? ORDER BY idx", (batch_id,)
        )
        return [rows.chunk_from_row(r) for r in found]

    async def drop_results(self, batch_id: str) -> None:
        await self._tx(lambda db: db.execute("DELETE FROM results WHERE batch_id = ?", (batch_id,)))

    # -- webhooks (SQL in sqlite_webhooks.py) ---------------------------------------------------------------
    async def create_webhook(self, e: WebhookEndpoint) -> None:
        await self._tx(lambda db: webhooks.insert_endpoint(db, e))

    async def list_webhooks(self, project: str | None) -> list[WebhookEndpoint]:
        return await self._read(webhooks.list_endpoints, self._reader, project)

    async def delete_webhook(self, webhook_id: str, project: str | None) -> bool:
        return await self._tx(lambda db: webhooks.delete_endpoint(db, webhook_id, project))

    async def claim_deliveries(self, owner: str, now: float, lease: float, limit: int) -> list[DeliveryClaim]:
        if not await self._read(webhooks.any_due, self._reader, now):
            return []
        return await self._tx(lambda db: webhooks.claim(db, owner, now, lease, limit))

    async def record_attempt(
        self, delivery_id: str, generation: int, attempt: DeliveryAttempt | None, status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> bool:
        return await self._tx(lambda db: webhooks.record(db, delivery_id, generation, attempt, status, next_attempt_at))

    async def deliveries_for_batch(self, batch_id: str) -> list[WebhookDelivery]:
        return await self._read(webhooks.for_batch, self._reader, batch_id)

    # -- leases of gone processes -------------------------------------------------------------------------
    async def lease_owners(self) -> set[str]:
        found = await self._all(
            "SELECT lease_owner FROM chunks WHERE done = 0 AND lease_until > 0 AND lease_owner IS NOT NULL "
            "UNION SELECT lease_owner FROM batches WHERE lease_until > 0 AND lease_owner IS NOT NULL"
        )
        return {r[0] for r in found}

    async def release_owner(self, owner: str) -> None:
        def q(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE chunks SET lease_until = 0, generation = generation + 1 WHERE lease_owner = ? AND done = 0",
                (owner,),
            )
            db.execute(
                "UPDATE batches SET lease_until = 0, generation = generation + 1 WHERE lease_owner = ?", (owner,)
            )

        await self._tx(q)


def _migrate(db: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own BEGIN IMMEDIATE transaction (other starters wait)."""
    db.execute(migrate.CREATE_SQLITE_TABLE)
    applied = []
    for m in migrate.migrations("sqlite"):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)).fetchone() is None:
                for statement in migrate.sqlite_statements(m.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, strftime('%s'))",
                    (m.version, m.name),
                )
                db.execute(f"PRAGMA user_version={m.version}")
                applied.append(m.version)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return applied
