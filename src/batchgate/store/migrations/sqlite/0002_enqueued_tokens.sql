-- Prompt tokens a batch holds in the queue (counted at validation when an enqueued-token limit is set).
ALTER TABLE batches ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS batches_enqueued ON batches (project, model, status);
