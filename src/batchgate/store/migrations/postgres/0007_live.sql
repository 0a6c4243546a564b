-- Live batches (issue 15).
-- batches.recorded: the last recording sequence number given to one of the batch's results (results.seq), so
-- that a follower's cursor moves in recording order; results_until: when the results of a finished batch are
-- dropped (they stay a while for followers); results_dropped: they are gone (read the output and error files).
-- idempotency_keys: a project's Idempotency-Key headers on creates, each with its request's hash and the object
-- it created (NULL while the creating request runs), kept until expires_at.
ALTER TABLE batches ADD COLUMN recorded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN results_until BIGINT;
ALTER TABLE batches ADD COLUMN results_dropped BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX batches_results_until ON batches (results_until) WHERE results_until IS NOT NULL;
ALTER TABLE results ADD COLUMN seq BIGINT;
CREATE INDEX results_by_seq ON results (batch_id, seq);
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
