-- Metadata of one region. Times are Unix milliseconds (UTC).

CREATE TABLE buckets (
    name        TEXT PRIMARY KEY NOT NULL,
    created_ms  INTEGER NOT NULL,
    -- NULL: never versioned; 'Enabled' | 'Suspended'
    versioning  TEXT
) STRICT;

-- Every version and delete marker of every object. `id` orders versions of a
-- key by arrival; exactly one row per (bucket, key) has is_latest = 1.
CREATE TABLE versions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket           TEXT NOT NULL REFERENCES buckets(name),
    key              TEXT NOT NULL,
    version_id       TEXT NOT NULL,
    is_latest        INTEGER NOT NULL,
    is_delete_marker INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    etag             TEXT NOT NULL,
    -- JSON: content headers, user metadata, checksum, storage class
    attrs            TEXT NOT NULL,
    -- JSON array of [key, value]
    tags             TEXT NOT NULL,
    -- Small objects live here; large ones in blobs listed by `parts`.
    inline_data      BLOB,
    -- JSON array of {"blob": id, "size": n}
    parts            TEXT NOT NULL,
    UNIQUE (bucket, key, version_id)
) STRICT;

CREATE INDEX versions_by_key ON versions (bucket, key, id);
CREATE UNIQUE INDEX versions_latest ON versions (bucket, key) WHERE is_latest = 1;

CREATE TABLE uploads (
    upload_id   TEXT PRIMARY KEY NOT NULL,
    bucket      TEXT NOT NULL REFERENCES buckets(name),
    key         TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    attrs       TEXT NOT NULL,
    tags        TEXT NOT NULL
) STRICT;

CREATE INDEX uploads_by_key ON uploads (bucket, key, created_ms);

CREATE TABLE parts (
    upload_id   TEXT NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    blob        TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    checksum    TEXT,
    PRIMARY KEY (upload_id, part_number)
) STRICT;

-- The global bucket-name registry. Only the registry region's copy is used.
CREATE TABLE bucket_registry (
    name        TEXT PRIMARY KEY NOT NULL,
    region      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;
