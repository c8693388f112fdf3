-- Operator commands on an edge's relay (queue list/retry/remove, protocol log
-- queries) travel as tasks like the key work; their answers are kept whole.
ALTER TABLE certificate_tasks ADD COLUMN result BYTEA;
