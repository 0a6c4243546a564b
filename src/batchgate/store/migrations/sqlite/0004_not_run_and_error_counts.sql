-- Of a batch's failed requests, how many never ran (cancelled or expired first), and its error file grouped by
-- code: [[code, count, example message], ...], set when the batch ends. Both for the dashboard.
ALTER TABLE batches ADD COLUMN not_run INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN error_counts TEXT;
