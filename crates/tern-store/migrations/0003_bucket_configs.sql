-- Bucket-level configurations (default encryption, replication, …), one
-- JSON document per kind; they go with their bucket.
CREATE TABLE bucket_configs (
    bucket TEXT NOT NULL REFERENCES buckets(name) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (bucket, kind)
) STRICT, WITHOUT ROWID;
