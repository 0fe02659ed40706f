-- The storage class a rule's destination asks replicas to be stored in.
ALTER TABLE replication_tasks ADD COLUMN storage_class TEXT;
