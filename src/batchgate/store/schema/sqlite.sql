-- The current SQLite schema at a glance: all migrations applied. tests/store/test_migrations.py fails
-- when this file and migrations/sqlite/ disagree; update both in the same change.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- A project's weight in each upstream's fair share; a project without a row weighs 1.
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    weight REAL NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    -- the bytes are gone; the row stays as a tombstone (list cursors that name it keep working)
    purged INTEGER NOT NULL DEFAULT 0,
    -- batches.seq when the file was deleted: batches up to it may read it to the end
    readers_up_to INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_project ON files (project, deleted, seq);
CREATE INDEX IF NOT EXISTS files_expiring ON files (expires_at) WHERE deleted = 0 AND expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_to_purge ON files (seq) WHERE deleted = 1 AND purged = 0;
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    status TEXT NOT NULL,
    file_expires_after INTEGER,
    file_id TEXT
);
CREATE TABLE IF NOT EXISTS upload_parts (
    id TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    created_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    md5 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parts_by_upload ON upload_parts (upload_id);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    metadata TEXT,
    output_expires_after INTEGER,
    model TEXT,
    in_progress_at INTEGER,
    finalizing_at INTEGER,
    completed_at INTEGER,
    failed_at INTEGER,
    expired_at INTEGER,
    cancelling_at INTEGER,
    cancelled_at INTEGER,
    output_file_id TEXT,
    error_file_id TEXT,
    errors TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    expiring INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    not_run INTEGER NOT NULL DEFAULT 0,
    error_counts TEXT,
    estimated_completion_at INTEGER,  -- the planner's estimate while in_progress
    recorded INTEGER NOT NULL DEFAULT 0,  -- the last results.seq given out: followers' cursors move in it
    results_until INTEGER,  -- when a finished batch's results are dropped (kept a while for followers)
    results_dropped INTEGER NOT NULL DEFAULT 0,  -- they are gone: the output and error files have them
    paused_at INTEGER,  -- set while paused: no chunk of it is claimed
    retried_from TEXT,  -- the batch whose failed or unfinished lines this one runs again
    retry_only TEXT,  -- which of them: 'failed' or 'unfinished'
    at_risk_since INTEGER  -- since when the planner serves it first, at risk of missing its window
);
CREATE INDEX IF NOT EXISTS batches_by_project ON batches (project, seq);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches (status);
CREATE INDEX IF NOT EXISTS batches_enqueued ON batches (project, model, status);
CREATE INDEX IF NOT EXISTS batches_by_input ON batches (input_file_id);
CREATE INDEX IF NOT EXISTS batches_results_until ON batches (results_until) WHERE results_until IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS batches_retries ON batches (retried_from, retry_only) WHERE retried_from IS NOT NULL;
CREATE TABLE IF NOT EXISTS chunks (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    last_line INTEGER NOT NULL,
    byte_start INTEGER NOT NULL,
    byte_end INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,  -- failed runs; a failing chunk is retried with backoff
    retry_at REAL NOT NULL DEFAULT 0,  -- nobody claims the chunk before this time
    PRIMARY KEY (batch_id, idx)
);
CREATE INDEX IF NOT EXISTS chunks_open ON chunks (done, batch_id, idx);
CREATE TABLE IF NOT EXISTS results (
    batch_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    data BLOB NOT NULL,
    seq INTEGER,  -- recording order (batches.recorded): a follower's cursor
    PRIMARY KEY (batch_id, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_by_seq ON results (batch_id, seq);

-- Webhooks: endpoints per project, one delivery per (terminal transition, matching endpoint), every attempt.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_by_project ON webhook_endpoints (project, seq);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    endpoint_id TEXT NOT NULL,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_batch ON webhook_deliveries (batch_id, seq);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, status);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- Idempotency-Key headers on creates, per project: the request's hash and the object it created (NULL while the
-- creating request runs), kept until expires_at.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    object_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_expiring ON idempotency_keys (expires_at);
