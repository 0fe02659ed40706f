-- The replication outbox: one task per (new version or delete marker,
-- destination), written in the same transaction as the version itself.
CREATE TABLE replication_tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket         TEXT NOT NULL,
    key            TEXT NOT NULL,
    version_id     TEXT NOT NULL,
    rule_id        TEXT NOT NULL,
    -- The destination bucket's name.
    destination    TEXT NOT NULL,
    -- The rule's role and ReplicaKmsKeyID when the task was made.
    role           TEXT NOT NULL,
    replica_kms_key_id TEXT,
    size           INTEGER NOT NULL,
    -- PENDING | COMPLETED | FAILED
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    not_before_ms  INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    -- The AWS failure reason of a FAILED task, or the last transient error.
    reason         TEXT,
    created_ms     INTEGER NOT NULL,
    finished_ms    INTEGER
) STRICT;

CREATE INDEX replication_due ON replication_tasks (state, not_before_ms, id);
CREATE INDEX replication_by_version ON replication_tasks (bucket, key, version_id);
CREATE INDEX replication_by_bucket ON replication_tasks (bucket, state);
