-- Scheduling for a shared engine (issue 13).
-- projects: each project's weight in the fair share of every upstream; a project without a row weighs 1.
-- batches.estimated_completion_at: when the planner expects the batch to finish (unix seconds), while in_progress.
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    weight REAL NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL
);
ALTER TABLE batches ADD COLUMN estimated_completion_at INTEGER;
