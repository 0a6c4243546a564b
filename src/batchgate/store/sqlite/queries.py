"""The SQLite adapter's SQL, one named query each, under the same names as postgres/queries.py (a test checks).
The adapter (sqlite/store.py) only sequences them.

Locking: every write transaction is BEGIN IMMEDIATE, so writers take the database's one write lock in turn and
never deadlock; readers (WAL) never wait for it. SQLite has no SKIP LOCKED and, before 3.35, no RETURNING: a
claim is a SELECT of candidates, then an UPDATE and a read-back per row, inside the one write transaction.
"""

from __future__ import annotations

from batchgate.domain.status import CANCELLABLE, PAUSABLE, TERMINAL, BatchStatus, sources_of
from batchgate.store.rows import BATCH_COLUMNS, CHUNK_COLUMNS, F_FILE_COLUMNS, FILE_COLUMNS, UPLOAD_COLUMNS
from batchgate.store.webhook_rows import ATTEMPT_COLUMNS, DELIVERY_COLUMNS, ENDPOINT_COLUMNS

# Steps only SQLite needs, because it lacks RETURNING and SKIP LOCKED (see the header). Every other name here is
# also in postgres/queries.py, and the other way round, except what that module lists in its ONLY_HERE.
ONLY_HERE = frozenset({
    "LEASED_BATCH", "BATCH_STATUS", "CLAIMABLE_BATCH", "CLAIMABLE_CHUNKS", "LEASE_CHUNK",
    "ANY_DUE_DELIVERY", "DUE_DELIVERIES", "LEASE_DELIVERY", "CLAIMED_DELIVERY",
})


def _in(values: frozenset[BatchStatus]) -> str:
    return "(" + ",".join(f"'{v.value}'" for v in sorted(values)) + ")"


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- keys --------------------------------------------------------------------------------------------------
INSERT_KEY = "INSERT INTO api_keys (id, project, key_hash, admin, created_at) VALUES (?, ?, ?, ?, ?)"
FIND_KEY = "SELECT id, project, admin FROM api_keys WHERE key_hash = ?"
HAS_KEYS = "SELECT 1 FROM api_keys LIMIT 1"
LIST_KEYS = "SELECT id, project, admin, created_at FROM api_keys ORDER BY created_at, id"
DELETE_KEY = "DELETE FROM api_keys WHERE id = ?"

# -- projects ----------------------------------------------------------------------------------------------
SET_PROJECT_WEIGHT = (
    "INSERT INTO projects (name, weight, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET weight = excluded.weight, updated_at = excluded.updated_at"
)
PROJECT_WEIGHTS = "SELECT name, weight FROM projects ORDER BY name"

# -- files -------------------------------------------------------------------------------------------------
INSERT_FILE = f"INSERT INTO files ({FILE_COLUMNS}) VALUES ({_marks(7)})"
GET_FILE = f"SELECT {FILE_COLUMNS} FROM files WHERE id = ? AND deleted = 0"
FILE_SEQ = "SELECT seq FROM files WHERE id = :id AND (:project IS NULL OR project = :project)"
# :project NULL: every project; :purpose NULL: any; :seq NULL: from the start. The cursor bound is a plain range
# on seq (COALESCE of a parameter), so SQLite still walks the primary key from the cursor.
LIST_FILES_ASC = (
    f"SELECT {FILE_COLUMNS} FROM files WHERE (:project IS NULL OR project = :project) AND deleted = 0 "
    "AND (expires_at IS NULL OR expires_at > :now) AND (:purpose IS NULL OR purpose = :purpose) "
    "AND seq > COALESCE(:seq, -1) ORDER BY seq ASC LIMIT :limit"
)
LIST_FILES_DESC = (
    f"SELECT {FILE_COLUMNS} FROM files WHERE (:project IS NULL OR project = :project) AND deleted = 0 "
    "AND (expires_at IS NULL OR expires_at > :now) AND (:purpose IS NULL OR purpose = :purpose) "
    "AND seq < COALESCE(:seq, 9223372036854775807) ORDER BY seq DESC LIMIT :limit"
)
# A deleted file stays readable by the batches created before the delete (readers_up_to: the newest of them).
DELETE_FILE = (
    "UPDATE files SET deleted = 1, readers_up_to = (SELECT COALESCE(MAX(seq), 0) FROM batches) "
    "WHERE id = ? AND deleted = 0"
)
INPUT_FILE = (
    f"SELECT {F_FILE_COLUMNS} FROM batches b JOIN files f ON f.id = b.input_file_id "
    "WHERE b.id = ? AND f.purged = 0 AND (f.deleted = 0 OR f.readers_up_to >= b.seq)"
)
_UNREAD = f"NOT EXISTS (SELECT 1 FROM batches b WHERE b.input_file_id = f.id AND b.status NOT IN {_in(TERMINAL)})"
# Deleted or expired files that no unfinished batch reads; each branch matches one partial index (files_to_purge,
# files_expiring); the batches are found by batches_by_input. Parameters: now, limit.
PURGEABLE_FILES = (
    "SELECT id FROM (SELECT id FROM files WHERE deleted = 1 AND purged = 0 UNION ALL "
    "SELECT id FROM files WHERE deleted = 0 AND expires_at IS NOT NULL AND expires_at <= ?) AS f "
    f"WHERE {_UNREAD} LIMIT ?"
)
PURGEABLE_FILE = (
    f"SELECT id FROM files f WHERE id = ? AND purged = 0 AND (deleted = 1 OR expires_at <= ?) AND {_UNREAD}"
)
MARK_PURGED = "UPDATE files SET deleted = 1, purged = 1 WHERE id = ?"

# -- uploads -----------------------------------------------------------------------------------------------
INSERT_UPLOAD = f"INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ({_marks(11)})"
GET_UPLOAD = f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?"
INSERT_PART = "INSERT INTO upload_parts (id, upload_id, created_at, bytes, md5) VALUES (?, ?, ?, ?, ?)"
GET_PARTS = "SELECT id, upload_id, created_at, bytes, md5 FROM upload_parts WHERE upload_id = ?"
SET_UPLOAD_STATUS = "UPDATE uploads SET status = ?, file_id = ? WHERE id = ? AND status = 'pending'"

# -- batches: API side -------------------------------------------------------------------------------------
INSERT_BATCH = f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({_marks(len(BATCH_COLUMNS.split(',')))})"
GET_BATCH = f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?"
BATCH_SEQ = "SELECT seq FROM batches WHERE id = :id AND (:project IS NULL OR project = :project)"
# Newest first. :project NULL: every project; :status NULL: any; :seq NULL: from the start.
_ENDPOINT_FILTER = (
    "AND (:endpoint IS NULL OR endpoint = :endpoint) AND (:other_than IS NULL OR endpoint <> :other_than)"
)
LIST_BATCHES = (
    f"SELECT {BATCH_COLUMNS} FROM batches WHERE (:project IS NULL OR project = :project) "
    "AND (:status IS NULL OR status = :status) AND seq < COALESCE(:seq, 9223372036854775807) "
    f"{_ENDPOINT_FILTER} ORDER BY seq DESC LIMIT :limit"
)
# The page just newer than a cursor (Anthropic's before_id), oldest first: the store turns it around.
LIST_BATCHES_NEWER = (
    f"SELECT {BATCH_COLUMNS} FROM batches WHERE (:project IS NULL OR project = :project) "
    f"AND (:status IS NULL OR status = :status) AND seq > :seq {_ENDPOINT_FILTER} ORDER BY seq ASC LIMIT :limit"
)
# A retry's batch, unless that batch was already retried for the same lines (batches_retries): then nothing.
INSERT_RETRY = (
    f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({_marks(len(BATCH_COLUMNS.split(',')))}) "
    "ON CONFLICT (retried_from, retry_only) WHERE retried_from IS NOT NULL DO NOTHING"
)
RETRY_OF = f"SELECT {BATCH_COLUMNS} FROM batches WHERE retried_from = ? AND retry_only = ?"
DELETE_BATCH = f"DELETE FROM batches WHERE id = ? AND status IN {_in(TERMINAL)}"
DELETE_CHUNKS = "DELETE FROM chunks WHERE batch_id = ?"
ENQUEUED_TOKENS = (
    "SELECT COALESCE(SUM(prompt_tokens), 0) FROM batches WHERE project = ? AND model = ? "
    "AND status IN ('in_progress', 'finalizing')"
)
COUNT_BATCHES_BY_STATUS = (
    "SELECT status, COUNT(*) FROM batches WHERE (:project IS NULL OR project = :project) GROUP BY status"
)
REQUEST_CANCEL = (
    f"UPDATE batches SET status = 'cancelling', cancelling_at = ? WHERE id = ? AND status IN {_in(CANCELLABLE)}"
)
# A paused batch keeps its status: only its claims stop (SCHEDULE_SNAPSHOT, CLAIMABLE_BATCH) and its running chunks
# drain (STOPPED_BATCHES). Its estimate means nothing while paused.
PAUSE_BATCH = (
    "UPDATE batches SET paused_at = ?, estimated_completion_at = NULL "
    f"WHERE id = ? AND paused_at IS NULL AND status IN {_in(PAUSABLE)}"
)
RESUME_BATCH = f"UPDATE batches SET paused_at = NULL WHERE id = ? AND status IN {_in(PAUSABLE)}"

# -- batches: worker side ----------------------------------------------------------------------------------
MARK_EXPIRING = "UPDATE batches SET expiring = 1 WHERE status = 'in_progress' AND expiring = 0 AND expires_at <= ?"
# A batch needs a batch-level task when it waits for validation, or for finalization: cancelling,
# finalizing, expiring, or in progress with every chunk done. Finalization also waits until no chunk lease
# is live.
PICK_BATCH_TASK = """
SELECT id, status FROM batches b
WHERE lease_until < :now AND (
    status = 'validating'
    OR (status IN ('finalizing', 'cancelling')
        OR (status = 'in_progress' AND (expiring = 1 OR NOT EXISTS (
            SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND c.done = 0))))
       AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.batch_id = b.id AND c.done = 0 AND c.lease_until >= :now)
)
ORDER BY seq LIMIT 1
"""
LEASE_BATCH = "UPDATE batches SET lease_owner = ?, lease_until = ?, generation = generation + 1 WHERE id = ?"
LEASED_BATCH = f"SELECT {BATCH_COLUMNS}, generation, expiring FROM batches WHERE id = ?"
# Fence out any worker still holding a stale claim on one of the batch's chunks.
FENCE_CHUNKS = "UPDATE chunks SET generation = generation + 1, lease_until = 0 WHERE batch_id = ? AND done = 0"
RENEW_BATCH = "UPDATE batches SET lease_until = ? WHERE id = ? AND generation = ?"
BATCH_STATUS = "SELECT status FROM batches WHERE id = ?"
START_BATCH = """
UPDATE batches SET total = ?, model = ?, lease_until = 0, prompt_tokens = ?,
    in_progress_at = CASE WHEN status = 'validating' THEN ? ELSE in_progress_at END,
    status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END
WHERE id = ? AND generation = ?
"""
INSERT_CHUNKS = f"INSERT OR IGNORE INTO chunks (batch_id, {CHUNK_COLUMNS}) VALUES ({_marks(7)})"  # executemany
FAIL_BATCH = (
    "UPDATE batches SET status = 'failed', failed_at = ?, errors = ?, lease_until = 0 "
    f"WHERE id = ? AND generation = ? AND status IN {_in(sources_of(BatchStatus.FAILED))}"
)
ENTER_FINALIZING = (
    "UPDATE batches SET status = 'finalizing', finalizing_at = ? "
    "WHERE id = ? AND generation = ? AND status = 'in_progress'"
)


def finish_batch(status: BatchStatus) -> str:
    """The conditional UPDATE entering terminal `status` (its timestamp column differs per status)."""
    return (
        f"UPDATE batches SET status = ?, {status.timestamp_field} = ?, output_file_id = ?, error_file_id = ?, "
        "total = ?, completed = ?, failed = ?, not_run = ?, error_counts = ?, lease_until = 0 "
        f"WHERE id = ? AND generation = ? AND status IN {_in(sources_of(status))}"
    )


# Claims go batch by batch, in the planner's order, and take each one's open chunks in index order straight from the
# chunks_open index: a claim reads the chunks it takes (and those leased to others), not every open chunk of every
# batch joined and sorted, which made each claim O(chunks) and a 1,000,000-line batch's claims O(n^2). The write
# lock keeps another worker from claiming the same rows meanwhile.
CLAIMABLE_CHUNKS = f"""
SELECT {CHUNK_COLUMNS}, failures FROM chunks
WHERE done = 0 AND batch_id = :batch_id AND lease_until < :now AND retry_at <= :now
ORDER BY idx LIMIT :limit
"""
LEASE_CHUNK = (
    "UPDATE chunks SET lease_owner = ?, lease_until = ?, generation = generation + 1 WHERE batch_id = ? AND idx = ?"
)
RENEW_CHUNKS = (  # one claim per run
    "UPDATE chunks SET lease_until = ? WHERE batch_id = ? AND idx = ? AND generation = ? AND done = 0"
)
# {ids}: one ? per batch id. Each stopped batch with whether it stops for good (1: cancelled, expiring, ended) or
# only pauses (0: its chunks drain).
STOPPED_BATCHES = (
    "SELECT id, status != 'in_progress' OR expiring = 1 FROM batches WHERE id IN ({ids}) "
    "AND (status != 'in_progress' OR expiring = 1 OR paused_at IS NOT NULL)"
)
CHUNK_GENERATION = "SELECT generation FROM chunks WHERE batch_id = ? AND idx = ?"
INSERT_RESULTS = "INSERT OR IGNORE INTO results (batch_id, line, ok, data, seq) VALUES (?, ?, ?, ?, ?)"  # one per run
ADD_COUNTS = """
UPDATE batches SET completed = completed + ?, failed = failed + ?, input_tokens = input_tokens + ?,
    cached_tokens = cached_tokens + ?, output_tokens = output_tokens + ?,
    reasoning_tokens = reasoning_tokens + ?, total_tokens = total_tokens + ?, retries = retries + ?
WHERE id = ?
"""
DONE_LINES = "SELECT line FROM results WHERE batch_id = ? AND line BETWEEN ? AND ?"
RECORDED_LINES = "SELECT line FROM results WHERE batch_id = :id AND (:ok IS NULL OR ok = :ok)"
COMPLETE_CHUNK = "UPDATE chunks SET done = 1, lease_until = 0 WHERE batch_id = ? AND idx = ? AND generation = ?"
FINALIZE_IF_ALL_DONE = """
UPDATE batches SET status = 'finalizing', finalizing_at = :now
WHERE id = :id AND status = 'in_progress' AND expiring = 0
  AND NOT EXISTS (SELECT 1 FROM chunks WHERE batch_id = :id AND done = 0)
"""
RELEASE_CHUNK = "UPDATE chunks SET lease_until = 0 WHERE batch_id = ? AND idx = ? AND generation = ?"
CHUNK_FAILED = (
    "UPDATE chunks SET failures = failures + 1, lease_until = 0, retry_at = ? "
    "WHERE batch_id = ? AND idx = ? AND generation = ? AND done = 0"
)
RESULTS_IN = "SELECT line, ok, data FROM results WHERE batch_id = ? AND line BETWEEN ? AND ?"
CHUNK_SPECS = f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE batch_id = ? ORDER BY idx"
DROP_RESULTS = "DELETE FROM results WHERE batch_id = ?"

# -- scheduling ----------------------------------------------------------------------------------------------
# What the planner reads every second: each runnable batch with its chunks counted from chunks_open (done, batch_id,
# idx: one index range per batch, never the done chunks of long batches) and its project's weight.
SCHEDULE_SNAPSHOT = """
SELECT b.id, b.project, b.model, b.seq, b.created_at, b.expires_at, b.total, b.completed + b.failed,
    (SELECT COUNT(*) FROM chunks c WHERE c.done = 0 AND c.batch_id = b.id AND c.lease_until >= :now),
    (SELECT COUNT(*) FROM chunks c WHERE c.done = 0 AND c.batch_id = b.id AND c.lease_until < :now
        AND c.retry_at <= :now),
    COALESCE(p.weight, 1)
FROM batches b LEFT JOIN projects p ON p.name = b.project
WHERE b.status = 'in_progress' AND b.expiring = 0 AND b.paused_at IS NULL
ORDER BY b.seq
"""
# claim_chunks_of, per wanted batch: is it still runnable (then CLAIMABLE_CHUNKS, LEASE_CHUNK as in claim_chunks).
CLAIMABLE_BATCH = (
    "SELECT endpoint, input_file_id FROM batches WHERE id = ? AND status = 'in_progress' AND expiring = 0 "
    "AND paused_at IS NULL"
)
SET_ESTIMATES = (  # executemany
    "UPDATE batches SET estimated_completion_at = ? WHERE id = ? AND status = 'in_progress'"
)
# executemany. Only a change of at risk or not is written: a batch already marked keeps the time it was first found
# (by any worker); a mark goes only on an in_progress batch, and is taken off whatever the status.
SET_AT_RISK = """
UPDATE batches SET at_risk_since = :since
WHERE id = :id AND (:since IS NULL) <> (at_risk_since IS NULL) AND (:since IS NULL OR status = 'in_progress')
"""

# -- leases of gone processes ------------------------------------------------------------------------------
LEASE_OWNERS = """
SELECT lease_owner FROM chunks WHERE done = 0 AND lease_until > 0 AND lease_owner IS NOT NULL
UNION SELECT lease_owner FROM batches WHERE lease_until > 0 AND lease_owner IS NOT NULL
"""
RELEASE_OWNER_CHUNKS = (
    "UPDATE chunks SET lease_until = 0, generation = generation + 1 WHERE lease_owner = ? AND done = 0"
)
RELEASE_OWNER_BATCHES = "UPDATE batches SET lease_until = 0, generation = generation + 1 WHERE lease_owner = ?"

# -- webhooks ----------------------------------------------------------------------------------------------
INSERT_ENDPOINT = f"INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ({_marks(6)})"
LIST_ENDPOINTS = (
    f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE (:project IS NULL OR project = :project) ORDER BY seq"
)
DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = :id AND (:project IS NULL OR project = :project)"
DISCARD_PENDING = (
    "UPDATE webhook_deliveries SET status = 'discarded', next_attempt_at = NULL "
    "WHERE endpoint_id = ? AND status = 'pending'"
)
ENDPOINTS_OF_BATCH = (
    "SELECT b.project, e.id, e.url, e.events FROM batches b "
    "LEFT JOIN webhook_endpoints e ON e.project = b.project WHERE b.id = ?"
)
INSERT_DELIVERIES = f"INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ({_marks(10)})"  # executemany
# Asked on the reader first, so that polling with nothing due never takes the write lock.
ANY_DUE_DELIVERY = (
    "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= :now AND lease_until < :now "
    "LIMIT 1"
)
DUE_DELIVERIES = (
    "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= :now AND lease_until < :now "
    "ORDER BY next_attempt_at LIMIT :limit"
)
LEASE_DELIVERY = (
    "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, generation = generation + 1 WHERE id = ?"
)
CLAIMED_DELIVERY = (
    f"SELECT {DELIVERY_COLUMNS}, attempts, generation, "
    "(SELECT secret FROM webhook_endpoints e WHERE e.id = d.endpoint_id) "
    "FROM webhook_deliveries d WHERE id = ?"
)
# The generation moves on: this claim is spent, so the same attempt can never be recorded twice.
RECORD_ATTEMPT = (
    "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, lease_until = 0, attempts = attempts + ?, "
    "generation = generation + 1 WHERE id = ? AND generation = ? AND status = 'pending'"
)
INSERT_ATTEMPT = f"INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) VALUES ({_marks(6)})"
DELIVERIES_OF_BATCH = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE batch_id = ? ORDER BY seq"
ATTEMPTS_OF_BATCH = f"""
SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts
WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE batch_id = ?) ORDER BY delivery_id, number
"""

# -- live batches: the recording sequence, following results, idempotency keys (docs/extensions.md) -----------
# The batch's last recording number; read and set in the write transaction that records (domain/results_feed.py).
RECORDED = "SELECT recorded FROM batches WHERE id = ?"
SET_RECORDED = "UPDATE batches SET recorded = ? WHERE id = ?"
BATCH_GENERATION = "SELECT generation FROM batches WHERE id = ?"
RESULT_HEAD = (
    "SELECT id, project, status, recorded, results_dropped, output_file_id, error_file_id FROM batches WHERE id = ?"
)
RESULTS_AFTER = "SELECT seq, ok, data FROM results WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT ?"
KEEP_RESULTS = "UPDATE batches SET results_until = ? WHERE id = ?"
RESULTS_TO_DROP = "SELECT id FROM batches WHERE results_until IS NOT NULL AND results_until <= ? LIMIT ?"
RESULTS_DROPPED = "UPDATE batches SET results_until = NULL, results_dropped = 1 WHERE id = ?"
IDEMPOTENCY_COLUMNS = "project, key, kind, request_hash, owner, object_id, created_at, expires_at"
INSERT_IDEMPOTENCY_KEY = (
    f"INSERT INTO idempotency_keys ({IDEMPOTENCY_COLUMNS}) VALUES ({_marks(8)}) ON CONFLICT (project, key) DO NOTHING"
)
# An expired key, or a claim whose request died before it created anything, goes to the new request.
TAKE_OVER_IDEMPOTENCY_KEY = (
    "UPDATE idempotency_keys SET kind = ?, request_hash = ?, owner = ?, object_id = NULL, created_at = ?, "
    "expires_at = ? WHERE project = ? AND key = ? AND (expires_at <= ? OR (object_id IS NULL AND created_at <= ?))"
)
GET_IDEMPOTENCY_KEY = f"SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE project = ? AND key = ?"
SET_IDEMPOTENCY_OBJECT = (
    "UPDATE idempotency_keys SET object_id = ? WHERE project = ? AND key = ? AND owner = ? AND object_id IS NULL"
)
RELEASE_IDEMPOTENCY_KEY = (
    "DELETE FROM idempotency_keys WHERE project = ? AND key = ? AND owner = ? AND object_id IS NULL"
)
PURGE_IDEMPOTENCY_KEYS = "DELETE FROM idempotency_keys WHERE expires_at <= ?"
