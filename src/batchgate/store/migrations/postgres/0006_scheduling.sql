-- Scheduling for a shared engine (issue 13).
-- projects: each project's weight in the fair share of every upstream; a project without a row weighs 1.
-- batches.estimated_completion_at: when the planner expects the batch to finish (unix seconds), while in_progress.
CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    weight DOUBLE PRECISION NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);
ALTER TABLE batches ADD COLUMN estimated_completion_at BIGINT;
