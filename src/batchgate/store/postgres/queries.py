"""The PostgreSQL adapter's SQL, one named query each, under the same names as sqlite/queries.py (a test checks).
The adapter (postgres/store.py) only sequences them.

Lock order, to keep concurrent workers free of deadlocks: a batch row before any of its chunk rows, and
several chunk rows in (batch_id, idx) order. Claims never wait: they skip rows another worker has locked.
"""

from __future__ import annotations

from batchgate.domain.status import CANCELLABLE, PAUSABLE, TERMINAL, BatchStatus, sources_of
from batchgate.store.rows import BATCH_COLUMNS, CHUNK_COLUMNS, F_FILE_COLUMNS, FILE_COLUMNS, UPLOAD_COLUMNS
from batchgate.store.webhook_rows import ATTEMPT_COLUMNS, DELIVERY_COLUMNS, ENDPOINT_COLUMNS

# Steps only PostgreSQL needs or can do in one statement: row locks (SQLite locks the whole database for a
# write), and claims as one UPDATE ... RETURNING over rows picked with SKIP LOCKED. Every other name here is also
# in sqlite/queries.py, and the other way round, except what that module lists in its ONLY_HERE.
ONLY_HERE = frozenset({"LOCK_BATCH", "CLAIM_CHUNKS_OF", "CLAIM_DELIVERIES"})


def _in(values: frozenset[BatchStatus]) -> str:
    return "(" + ",".join(f"'{v.value}'" for v in sorted(values)) + ")"


def _marks(n: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + n))


# -- keys --------------------------------------------------------------------------------------------------
INSERT_KEY = "INSERT INTO api_keys (id, project, key_hash, admin, created_at) VALUES ($1, $2, $3, $4, $5)"
FIND_KEY = "SELECT id, project, admin FROM api_keys WHERE key_hash = $1"
HAS_KEYS = "SELECT EXISTS (SELECT 1 FROM api_keys)"
LIST_KEYS = "SELECT id, project, admin, created_at FROM api_keys ORDER BY created_at, id"
DELETE_KEY = "DELETE FROM api_keys WHERE id = $1"

# -- projects ----------------------------------------------------------------------------------------------
SET_PROJECT_WEIGHT = (
    "INSERT INTO projects (name, weight, updated_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET weight = excluded.weight, updated_at = excluded.updated_at"
)
PROJECT_WEIGHTS = "SELECT name, weight FROM projects ORDER BY name"

# -- files -------------------------------------------------------------------------------------------------
INSERT_FILE = f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({_marks(7)})"
GET_FILE = f"SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND NOT deleted"
FILE_SEQ = "SELECT seq FROM files WHERE id = $1 AND ($2::text IS NULL OR project = $2)"
# $1 project (NULL: every project), $2 now, $3 purpose (NULL: any), $4 cursor seq (NULL: from the start), $5 limit
LIST_FILES_ASC = (
    f"SELECT {FILE_COLUMNS} FROM files WHERE ($1::text IS NULL OR project = $1) AND NOT deleted "
    "AND (expires_at IS NULL OR expires_at > $2) AND ($3::text IS NULL OR purpose = $3) "
    "AND ($4::bigint IS NULL OR seq > $4) ORDER BY seq ASC LIMIT $5"
)
LIST_FILES_DESC = (
    f"SELECT {FILE_COLUMNS} FROM files WHERE ($1::text IS NULL OR project = $1) AND NOT deleted "
    "AND (expires_at IS NULL OR expires_at > $2) AND ($3::text IS NULL OR purpose = $3) "
    "AND ($4::bigint IS NULL OR seq < $4) ORDER BY seq DESC LIMIT $5"
)
# A deleted file stays readable by the batches created before the delete (readers_up_to: the newest of them).
DELETE_FILE = (
    "UPDATE files SET deleted = TRUE, readers_up_to = (SELECT COALESCE(MAX(seq), 0) FROM batches) "
    "WHERE id = $1 AND NOT deleted"
)
INPUT_FILE = (
    f"SELECT {F_FILE_COLUMNS} FROM batches b JOIN files f ON f.id = b.input_file_id "
    "WHERE b.id = $1 AND NOT f.purged AND (NOT f.deleted OR f.readers_up_to >= b.seq)"
)
_UNREAD = f"NOT EXISTS (SELECT 1 FROM batches b WHERE b.input_file_id = f.id AND b.status NOT IN {_in(TERMINAL)})"
# Deleted or expired files that no unfinished batch reads; each branch matches one partial index.
PURGEABLE_FILES = f"""
SELECT id FROM (
    SELECT id FROM files WHERE deleted AND NOT purged
    UNION ALL
    SELECT id FROM files WHERE NOT deleted AND expires_at IS NOT NULL AND expires_at <= $1
) AS f WHERE {_UNREAD} LIMIT $2
"""
PURGEABLE_FILE = (
    f"SELECT id FROM files f WHERE id = $1 AND NOT purged AND (deleted OR expires_at <= $2) AND {_UNREAD}"
)
MARK_PURGED = "UPDATE files SET deleted = TRUE, purged = TRUE WHERE id = $1"

# -- uploads -----------------------------------------------------------------------------------------------
INSERT_UPLOAD = f"INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ({_marks(11)})"
GET_UPLOAD = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
INSERT_PART = "INSERT INTO upload_parts (id, upload_id, created_at, bytes, md5) VALUES ($1, $2, $3, $4, $5)"
GET_PARTS = "SELECT id, upload_id, created_at, bytes, md5 FROM upload_parts WHERE upload_id = $1"
SET_UPLOAD_STATUS = "UPDATE uploads SET status = $1, file_id = $2 WHERE id = $3 AND status = 'pending'"

# -- batches: API side -------------------------------------------------------------------------------------
INSERT_BATCH = f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({_marks(len(BATCH_COLUMNS.split(',')))})"
GET_BATCH = f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = $1"
BATCH_SEQ = "SELECT seq FROM batches WHERE id = $1 AND ($2::text IS NULL OR project = $2)"
# $1 project (NULL: every project), $2 cursor seq (NULL: newest first from the start), $3 limit,
# $4 status (NULL: any), $5 only this endpoint, $6 no batch of this endpoint (NULL: any)
_ENDPOINT_FILTER = "AND ($5::text IS NULL OR endpoint = $5) AND ($6::text IS NULL OR endpoint <> $6)"
LIST_BATCHES = (
    f"SELECT {BATCH_COLUMNS} FROM batches WHERE ($1::text IS NULL OR project = $1) "
    "AND ($4::text IS NULL OR status = $4) AND ($2::bigint IS NULL OR seq < $2) "
    f"{_ENDPOINT_FILTER} ORDER BY seq DESC LIMIT $3"
)
# The page just newer than a cursor (Anthropic's before_id), oldest first: the store turns it around.
LIST_BATCHES_NEWER = (
    f"SELECT {BATCH_COLUMNS} FROM batches WHERE ($1::text IS NULL OR project = $1) "
    f"AND ($4::text IS NULL OR status = $4) AND seq > $2 {_ENDPOINT_FILTER} ORDER BY seq ASC LIMIT $3"
)
# A retry's batch, unless that batch was already retried for the same lines (batches_retries): then nothing.
INSERT_RETRY = (
    f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({_marks(len(BATCH_COLUMNS.split(',')))}) "
    "ON CONFLICT (retried_from, retry_only) WHERE retried_from IS NOT NULL DO NOTHING"
)
RETRY_OF = f"SELECT {BATCH_COLUMNS} FROM batches WHERE retried_from = $1 AND retry_only = $2"
DELETE_BATCH = f"DELETE FROM batches WHERE id = $1 AND status IN {_in(TERMINAL)}"
DELETE_CHUNKS = "DELETE FROM chunks WHERE batch_id = $1"
ENQUEUED_TOKENS = (
    "SELECT COALESCE(SUM(prompt_tokens), 0) FROM batches WHERE project = $1 AND model = $2 "
    "AND status IN ('in_progress', 'finalizing')"
)
# $1 project (NULL: every project)
COUNT_BATCHES_BY_STATUS = (
    "SELECT status, COUNT(*) FROM batches WHERE ($1::text IS NULL OR project = $1) GROUP BY status"
)
REQUEST_CANCEL = (
    f"UPDATE batches SET status = 'cancelling', cancelling_at = $2 WHERE id = $1 AND status IN {_in(CANCELLABLE)}"
)
# A paused batch keeps its status: only its claims stop (SCHEDULE_SNAPSHOT, CLAIM_CHUNKS_OF) and its running chunks
# drain (STOPPED_BATCHES). Its estimate means nothing while paused.
PAUSE_BATCH = (
    "UPDATE batches SET paused_at = $2, estimated_completion_at = NULL "
    f"WHERE id = $1 AND paused_at IS NULL AND status IN {_in(PAUSABLE)}"
)
RESUME_BATCH = f"UPDATE batches SET paused_at = NULL WHERE id = $1 AND status IN {_in(PAUSABLE)}"

# -- batches: worker side ----------------------------------------------------------------------------------
MARK_EXPIRING = (
    "UPDATE batches SET expiring = TRUE WHERE status = 'in_progress' AND NOT expiring AND expires_at <= $1"
)
# A batch needs a batch-level task when it waits for validation, or for finalization: cancelling,
# finalizing, expiring, or in progress with every chunk done. Finalization also waits until no chunk lease
# is live. SKIP LOCKED: a batch another worker is claiming (or recording results into) is left for later.
PICK_BATCH_TASK = """
SELECT id, status FROM batches b
WHERE lease_until < $1 AND (
    status = 'validating'
    OR (status IN ('finalizing', 'cancelling')
        OR (status = 'in_progress' AND (expiring OR NOT EXISTS (
            SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND NOT c.done))))
       AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND NOT c.done AND c.lease_until >= $1)
)
ORDER BY seq LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED
"""
LEASE_BATCH = (
    "UPDATE batches SET lease_owner = $2, lease_until = $3, generation = generation + 1 WHERE id = $1 "
    f"RETURNING {BATCH_COLUMNS}, generation, expiring"
)
# Fence out any worker still holding a stale claim on one of the batch's chunks (rows locked in idx order).
FENCE_CHUNKS = """
UPDATE chunks SET generation = generation + 1, lease_until = 0
WHERE batch_id = $1 AND idx IN (
    SELECT idx FROM chunks WHERE batch_id = $1 AND NOT done ORDER BY idx FOR NO KEY UPDATE)
"""
RENEW_BATCH = "UPDATE batches SET lease_until = $3 WHERE id = $1 AND generation = $2 RETURNING status"
START_BATCH = """
UPDATE batches SET total = $3, model = $4, lease_until = 0, prompt_tokens = $6,
    in_progress_at = CASE WHEN status = 'validating' THEN $5 ELSE in_progress_at END,
    status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END
WHERE id = $1 AND generation = $2
"""
INSERT_CHUNKS = f"""
INSERT INTO chunks (batch_id, {CHUNK_COLUMNS})
SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::bigint[], $6::bigint[], $7::int[])
ON CONFLICT DO NOTHING
"""
FAIL_BATCH = (
    "UPDATE batches SET status = 'failed', failed_at = $4, errors = $3, lease_until = 0 "
    f"WHERE id = $1 AND generation = $2 AND status IN {_in(sources_of(BatchStatus.FAILED))}"
)
ENTER_FINALIZING = (
    "UPDATE batches SET status = 'finalizing', finalizing_at = $3 "
    "WHERE id = $1 AND generation = $2 AND status = 'in_progress'"
)


def finish_batch(status: BatchStatus) -> str:
    """The conditional UPDATE entering terminal `status` (its timestamp column differs per status)."""
    return (
        f"UPDATE batches SET status = $3, {status.timestamp_field} = $4, output_file_id = $5, error_file_id = $6, "
        "total = $7, completed = $8, failed = $9, not_run = $10, error_counts = $11, lease_until = 0 "
        f"WHERE id = $1 AND generation = $2 AND status IN {_in(sources_of(status))}"
    )


RENEW_CHUNKS = """
WITH mine AS (
    SELECT c.batch_id, c.idx FROM chunks c
    JOIN unnest($2::text[], $3::int[], $4::bigint[]) AS k(batch_id, idx, generation)
      ON c.batch_id = k.batch_id AND c.idx = k.idx AND c.generation = k.generation
    WHERE NOT c.done ORDER BY c.batch_id, c.idx FOR NO KEY UPDATE OF c
)
UPDATE chunks c SET lease_until = $1 FROM mine WHERE c.batch_id = mine.batch_id AND c.idx = mine.idx
RETURNING c.batch_id, c.idx
"""
# Each stopped batch with whether it stops for good (cancelled, expiring, ended) or only pauses (its chunks drain).
STOPPED_BATCHES = (
    "SELECT id, status <> 'in_progress' OR expiring FROM batches WHERE id = ANY($1::text[]) "
    "AND (status <> 'in_progress' OR expiring OR paused_at IS NOT NULL)"
)
LOCK_BATCH = "SELECT 1 FROM batches WHERE id = $1 FOR NO KEY UPDATE"
# FOR SHARE: a concurrent claim (which bumps the generation) waits for this transaction, or we see its bump.
CHUNK_GENERATION = "SELECT generation FROM chunks WHERE batch_id = $1 AND idx = $2 FOR SHARE"
INSERT_RESULTS = """
INSERT INTO results (batch_id, line, ok, data, seq)
SELECT $1, * FROM unnest($2::int[], $3::boolean[], $4::bytea[], $5::bigint[])
ON CONFLICT DO NOTHING
RETURNING line
"""
ADD_COUNTS = """
UPDATE batches SET completed = completed + $2, failed = failed + $3, input_tokens = input_tokens + $4,
    cached_tokens = cached_tokens + $5, output_tokens = output_tokens + $6,
    reasoning_tokens = reasoning_tokens + $7, total_tokens = total_tokens + $8, retries = retries + $9
WHERE id = $1
"""
DONE_LINES = "SELECT line FROM results WHERE batch_id = $1 AND line BETWEEN $2 AND $3"
RECORDED_LINES = "SELECT line FROM results WHERE batch_id = $1 AND ($2::boolean IS NULL OR ok = $2)"
COMPLETE_CHUNK = "UPDATE chunks SET done = TRUE, lease_until = 0 WHERE batch_id = $1 AND idx = $2 AND generation = $3"
FINALIZE_IF_ALL_DONE = """
UPDATE batches SET status = 'finalizing', finalizing_at = $2
WHERE id = $1 AND status = 'in_progress' AND NOT expiring
  AND NOT EXISTS (SELECT 1 FROM chunks WHERE batch_id = $1 AND NOT done)
"""
RELEASE_CHUNK = "UPDATE chunks SET lease_until = 0 WHERE batch_id = $1 AND idx = $2 AND generation = $3"
CHUNK_FAILED = (
    "UPDATE chunks SET failures = failures + 1, lease_until = 0, retry_at = $4 "
    "WHERE batch_id = $1 AND idx = $2 AND generation = $3 AND NOT done"
)
RESULTS_IN = "SELECT line, ok, data FROM results WHERE batch_id = $1 AND line BETWEEN $2 AND $3"
CHUNK_SPECS = f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE batch_id = $1 ORDER BY idx"
DROP_RESULTS = "DELETE FROM results WHERE batch_id = $1"

# -- scheduling ----------------------------------------------------------------------------------------------
# What the planner reads every second: each runnable batch with its chunks counted from chunks_open (the index of
# the chunks not done; LATERAL: one index range per batch, never the done chunks of long batches), and its
# project's weight. No locks: a claim or a heartbeat that moves a lease meanwhile shows in the next snapshot.
SCHEDULE_SNAPSHOT = """
SELECT b.id, b.project, b.model, b.seq, b.created_at, b.expires_at, b.total, b.completed + b.failed,
    c.leased, c.open, COALESCE(p.weight, 1)
FROM batches b
LEFT JOIN projects p ON p.name = b.project
CROSS JOIN LATERAL (
    SELECT COUNT(*) FILTER (WHERE lease_until >= $1) AS leased,
           COUNT(*) FILTER (WHERE lease_until < $1 AND retry_at <= $1) AS open
    FROM chunks WHERE batch_id = b.id AND NOT done
) c
WHERE b.status = 'in_progress' AND NOT b.expiring AND b.paused_at IS NULL
ORDER BY b.seq
"""
# Claims in the planner's order: $4/$5 are the wanted batches and how many chunks of each, in order (ord). Each
# wanted batch's open chunks come in index order straight from chunks_open (LATERAL: joining every open chunk and
# sorting them made each claim O(chunks)), skipping rows another worker is claiming; the WHERE clause is
# re-checked on each locked row, so no chunk goes to two workers under one generation; rows locked but not picked
# are let go at commit. The caller names each batch once (a batch named twice would find its own locked rows again).
CLAIM_CHUNKS_OF = """
WITH picked AS (
    SELECT c.batch_id, c.idx, w.ord FROM unnest($4::text[], $5::int[]) WITH ORDINALITY AS w(batch_id, n, ord)
    JOIN batches b ON b.id = w.batch_id AND b.status = 'in_progress' AND NOT b.expiring AND b.paused_at IS NULL
    CROSS JOIN LATERAL (
        SELECT c.batch_id, c.idx FROM chunks c
        WHERE c.batch_id = w.batch_id AND NOT c.done AND c.lease_until < $1 AND c.retry_at <= $1
        ORDER BY c.idx LIMIT w.n
        FOR NO KEY UPDATE OF c SKIP LOCKED
    ) c
)
UPDATE chunks c SET lease_owner = $2, lease_until = $3, generation = c.generation + 1
FROM picked p, batches b
WHERE c.batch_id = p.batch_id AND c.idx = p.idx AND b.id = c.batch_id
RETURNING c.batch_id, b.endpoint, b.input_file_id, c.idx, c.first_line, c.last_line, c.byte_start, c.byte_end,
    c.requests, c.generation, c.failures, p.ord
"""
# Batch rows in id order (the lock order of several batch rows), skipping those another transaction holds: an
# estimate is rewritten at the next tick, so the planner never waits behind a worker recording results, and two
# planners never deadlock with each other or with MARK_EXPIRING.
SET_ESTIMATES = """
WITH mine AS (
    SELECT id FROM batches WHERE id = ANY($1::text[]) AND status = 'in_progress'
    ORDER BY id FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE batches b SET estimated_completion_at = e.at
FROM mine, unnest($1::text[], $2::bigint[]) AS e(id, at)
WHERE b.id = mine.id AND e.id = b.id AND b.estimated_completion_at IS DISTINCT FROM e.at
"""

# -- leases of gone processes ------------------------------------------------------------------------------
LEASE_OWNERS = """
SELECT lease_owner FROM chunks WHERE NOT done AND lease_until > 0 AND lease_owner IS NOT NULL
UNION SELECT lease_owner FROM batches WHERE lease_until > 0 AND lease_owner IS NOT NULL
"""
RELEASE_OWNER_BATCHES = (
    "UPDATE batches SET lease_until = 0, generation = generation + 1 WHERE id IN ("
    "SELECT id FROM batches WHERE lease_owner = $1 ORDER BY id FOR NO KEY UPDATE)"
)
RELEASE_OWNER_CHUNKS = """
UPDATE chunks SET lease_until = 0, generation = generation + 1 WHERE (batch_id, idx) IN (
    SELECT batch_id, idx FROM chunks WHERE lease_owner = $1 AND NOT done ORDER BY batch_id, idx FOR NO KEY UPDATE)
"""

# -- webhooks ----------------------------------------------------------------------------------------------
INSERT_ENDPOINT = f"INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
LIST_ENDPOINTS = (
    f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ($1::text IS NULL OR project = $1) ORDER BY seq"
)
DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = $1 AND ($2::text IS NULL OR project = $2)"
DISCARD_PENDING = (
    "UPDATE webhook_deliveries SET status = 'discarded', next_attempt_at = NULL "
    "WHERE endpoint_id = $1 AND status = 'pending'"
)
ENDPOINTS_OF_BATCH = (
    "SELECT b.project, e.id, e.url, e.events FROM batches b "
    "LEFT JOIN webhook_endpoints e ON e.project = b.project WHERE b.id = $1"
)
INSERT_DELIVERIES = f"""
INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::bigint[], $9::text[], $10::float8[])
"""
# Due deliveries, skipping rows another worker is claiming; the generation fences out a worker whose lease ran out.
CLAIM_DELIVERIES = f"""
WITH picked AS (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until < $1
    ORDER BY next_attempt_at LIMIT $4
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET lease_owner = $2, lease_until = $3, generation = d.generation + 1
FROM picked p WHERE d.id = p.id
RETURNING {", ".join("d." + c.strip() for c in DELIVERY_COLUMNS.split(","))}, d.attempts, d.generation,
    (SELECT secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id)
"""
RECORD_ATTEMPT = """
UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, lease_until = 0, attempts = attempts + $5,
    generation = generation + 1
WHERE id = $1 AND generation = $2 AND status = 'pending'
"""
INSERT_ATTEMPT = f"INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
DELIVERIES_OF_BATCH = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE batch_id = $1 ORDER BY seq"
ATTEMPTS_OF_BATCH = f"""
SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts
WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE batch_id = $1) ORDER BY delivery_id, number
"""

# -- live batches: the recording sequence, following results, idempotency keys (docs/extensions.md) -----------
# The batch's last recording number, read and set after LOCK_BATCH in the transaction that records: the next
# recorder of the batch waits for this one's commit, so its numbers become visible in order (domain/results_feed.py).
RECORDED = "SELECT recorded FROM batches WHERE id = $1"
SET_RECORDED = "UPDATE batches SET recorded = $2 WHERE id = $1"
BATCH_GENERATION = "SELECT generation FROM batches WHERE id = $1"
RESULT_HEAD = (
    "SELECT id, project, status, recorded, results_dropped, output_file_id, error_file_id FROM batches WHERE id = $1"
)
RESULTS_AFTER = "SELECT seq, ok, data FROM results WHERE batch_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
KEEP_RESULTS = "UPDATE batches SET results_until = $2 WHERE id = $1"
RESULTS_TO_DROP = "SELECT id FROM batches WHERE results_until IS NOT NULL AND results_until <= $1 LIMIT $2"
RESULTS_DROPPED = "UPDATE batches SET results_until = NULL, results_dropped = TRUE WHERE id = $1"
IDEMPOTENCY_COLUMNS = "project, key, kind, request_hash, owner, object_id, created_at, expires_at"
INSERT_IDEMPOTENCY_KEY = (
    f"INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (project, key) DO NOTHING"
)
# An expired key, or a claim whose request died before it created anything, goes to the new request.
TAKE_OVER_IDEMPOTENCY_KEY = (
    "UPDATE idempotency_keys SET kind = $1, request_hash = $2, owner = $3, object_id = NULL, created_at = $4, "
    "expires_at = $5 WHERE project = $6 AND key = $7 AND (expires_at <= $8 OR (object_id IS NULL AND created_at <= $9))"
)
GET_IDEMPOTENCY_KEY = f"SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE project = $1 AND key = $2"
SET_IDEMPOTENCY_OBJECT = (
    "UPDATE idempotency_keys SET object_id = $1 WHERE project = $2 AND key = $3 AND owner = $4 AND object_id IS NULL"
)
RELEASE_IDEMPOTENCY_KEY = (
    "DELETE FROM idempotency_keys WHERE project = $1 AND key = $2 AND owner = $3 AND object_id IS NULL"
)
PURGE_IDEMPOTENCY_KEYS = "DELETE FROM idempotency_keys WHERE expires_at <= $1"
