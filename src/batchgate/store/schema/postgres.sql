-- The current PostgreSQL schema at a glance: all migrations applied. tests/store/test_migrations.py fails
-- when this file and migrations/postgres/ disagree; update both in the same change.
-- Timestamps are Unix seconds (BIGINT) as in the API; leases are fractional seconds (DOUBLE PRECISION).
-- metadata and errors stay TEXT (not JSONB) so that a batch's metadata keeps the key order it was given.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
-- A project's weight in each upstream's fair share; a project without a row weighs 1.
CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    weight DOUBLE PRECISION NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);
CREATE TABLE files (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at BIGINT,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    -- the bytes are gone; the row stays as a tombstone (list cursors that name it keep working)
    purged BOOLEAN NOT NULL DEFAULT FALSE,
    -- batches.seq when the file was deleted: batches up to it may read it to the end
    readers_up_to BIGINT
);
CREATE INDEX files_by_project ON files (project, deleted, seq);
CREATE INDEX files_expiring ON files (expires_at) WHERE NOT deleted AND expires_at IS NOT NULL;
CREATE INDEX files_to_purge ON files (seq) WHERE deleted AND NOT purged;
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    status TEXT NOT NULL,
    file_expires_after BIGINT,
    file_id TEXT
);
CREATE TABLE upload_parts (
    id TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    created_at BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    md5 TEXT NOT NULL
);
CREATE INDEX parts_by_upload ON upload_parts (upload_id);
CREATE TABLE batches (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    metadata TEXT,
    output_expires_after BIGINT,
    model TEXT,
    in_progress_at BIGINT,
    finalizing_at BIGINT,
    completed_at BIGINT,
    failed_at BIGINT,
    expired_at BIGINT,
    cancelling_at BIGINT,
    cancelled_at BIGINT,
    output_file_id TEXT,
    error_file_id TEXT,
    errors TEXT,
    total BIGINT NOT NULL DEFAULT 0,
    completed BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    retries BIGINT NOT NULL DEFAULT 0,
    expiring BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    not_run BIGINT NOT NULL DEFAULT 0,
    error_counts TEXT,
    estimated_completion_at BIGINT,  -- the planner's estimate while in_progress
    recorded BIGINT NOT NULL DEFAULT 0,  -- the last results.seq given out: followers' cursors move in it
    results_until BIGINT,  -- when a finished batch's results are dropped (kept a while for followers)
    results_dropped BOOLEAN NOT NULL DEFAULT FALSE,  -- they are gone: the output and error files have them
    paused_at BIGINT,  -- set while paused: no chunk of it is claimed
    retried_from TEXT,  -- the batch whose failed or unfinished lines this one runs again
    retry_only TEXT,  -- which of them: 'failed' or 'unfinished'
    at_risk_since BIGINT  -- since when the planner serves it first, at risk of missing its window
);
CREATE INDEX batches_by_project ON batches (project, seq);
CREATE INDEX batches_by_status ON batches (status);
CREATE INDEX batches_enqueued ON batches (project, model, status);
CREATE INDEX batches_by_input ON batches (input_file_id);
CREATE INDEX batches_results_until ON batches (results_until) WHERE results_until IS NOT NULL;
CREATE UNIQUE INDEX batches_retries ON batches (retried_from, retry_only) WHERE retried_from IS NOT NULL;
CREATE TABLE chunks (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    last_line INTEGER NOT NULL,
    byte_start BIGINT NOT NULL,
    byte_end BIGINT NOT NULL,
    requests INTEGER NOT NULL,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,  -- failed runs; a failing chunk is retried with backoff
    retry_at DOUBLE PRECISION NOT NULL DEFAULT 0,  -- nobody claims the chunk before this time
    PRIMARY KEY (batch_id, idx)
);
-- Claims scan only the chunks still to do.
CREATE INDEX chunks_open ON chunks (batch_id, idx) WHERE NOT done;
CREATE TABLE results (
    batch_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    ok BOOLEAN NOT NULL,
    data BYTEA NOT NULL,
    seq BIGINT,  -- recording order (batches.recorded): a follower's cursor
    PRIMARY KEY (batch_id, line)
);
CREATE INDEX results_by_seq ON results (batch_id, seq);

-- Webhooks: endpoints per project, one delivery per (terminal transition, matching endpoint), every attempt.
CREATE TABLE webhook_endpoints (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_project ON webhook_endpoints (project, seq);
CREATE TABLE webhook_deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    endpoint_id TEXT NOT NULL,
    project TEXT NOT NULL,
    url TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL DEFAULT 0
);
-- Claims scan only the deliveries still to send.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_batch ON webhook_deliveries (batch_id, seq);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id) WHERE status = 'pending';
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, number)
);

-- Idempotency-Key headers on creates, per project: the request's hash and the object it created (NULL while the
-- creating request runs), kept until expires_at.
CREATE TABLE idempotency_keys (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    object_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE INDEX idempotency_keys_expiring ON idempotency_keys (expires_at);
