-- A deleted (or expired) file keeps its bytes while an unfinished batch still reads them; a worker chore
-- purges them afterwards and keeps the row as a tombstone (list cursors that name it keep working).
-- purged: the bytes are gone (until now a delete removed them at once, so every deleted file is purged).
-- readers_up_to: batches.seq when the file was deleted: batches up to it were created while the file was
-- visible and may read it to the end; a batch created later finds it missing.
ALTER TABLE files ADD COLUMN purged BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE files ADD COLUMN readers_up_to BIGINT;
UPDATE files SET purged = TRUE WHERE deleted;
CREATE INDEX files_to_purge ON files (seq) WHERE deleted AND NOT purged;
CREATE INDEX batches_by_input ON batches (input_file_id);
-- A chunk that fails (its input unreadable, storage down) is retried with backoff, not at once: failures
-- counts its failed runs, and nobody claims it before retry_at.
ALTER TABLE chunks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN retry_at DOUBLE PRECISION NOT NULL DEFAULT 0;
