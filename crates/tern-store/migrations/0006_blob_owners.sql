-- Every blob belongs to exactly one version or one upload part. A version
-- can never name a blob another row holds, so deleting a row's blobs never
-- deletes anyone else's bytes.
CREATE TABLE blob_owners (
    blob TEXT PRIMARY KEY NOT NULL
) STRICT, WITHOUT ROWID;
INSERT OR IGNORE INTO blob_owners (blob)
    SELECT json_extract(value, '$.blob') FROM versions, json_each(versions.parts);
INSERT OR IGNORE INTO blob_owners (blob) SELECT blob FROM parts;
-- Each part remembers its blob's binding (the salt in its at-rest header),
-- which passes to the version when the upload completes.
ALTER TABLE parts ADD COLUMN binding TEXT;
