-- Pause and resume, retry and resume (issue 15, items 2 and 3).
-- batches.paused_at: when the batch was paused (unix seconds); NULL while it runs. Paused batches are not claimed.
-- batches.retried_from: the batch whose lines this one runs again; retry_only: which of them ('failed' or
-- 'unfinished'). The new batch reads the same input file and runs only those lines.
ALTER TABLE batches ADD COLUMN paused_at INTEGER;
ALTER TABLE batches ADD COLUMN retried_from TEXT;
ALTER TABLE batches ADD COLUMN retry_only TEXT;
-- At most one retry of each kind per batch: a repeated retry call (a client's own retry after a timeout) gets the
-- batch the first one made, so no line runs twice.
CREATE UNIQUE INDEX IF NOT EXISTS batches_retries ON batches (retried_from, retry_only) WHERE retried_from IS NOT NULL;
