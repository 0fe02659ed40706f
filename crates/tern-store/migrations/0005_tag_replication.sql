-- Tag changes replicate after their object: a task is either the whole
-- version (OBJECT) or its current tag set (TAGS). Each version's tag set
-- carries a stamp (milliseconds, bumped on every change) so that where
-- changes meet — two-way replication with ReplicaModifications — the
-- newest wins everywhere.
ALTER TABLE replication_tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'OBJECT' CHECK (kind IN ('OBJECT', 'TAGS'));
ALTER TABLE versions ADD COLUMN tags_stamp INTEGER NOT NULL DEFAULT 0;
UPDATE versions SET tags_stamp = modified_ms;
-- Replicas say so in their attributes, whatever their status shows.
UPDATE versions SET attrs = json_set(attrs, '$.replica', json('true'))
    WHERE json_extract(attrs, '$.replication_status') = 'REPLICA';
