-- A batch at risk of missing its window says so (issue 16, item 4).
-- batches.at_risk_since: when the planner first found the batch at risk of missing its window (unix seconds), so
-- that it goes first at its upstream; NULL while it is not at risk. The API shows it only while in_progress.
ALTER TABLE batches ADD COLUMN at_risk_since BIGINT;
