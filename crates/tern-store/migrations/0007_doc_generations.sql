-- Each collection of documents counts the batches that changed it, so a
-- reader can tell it has changed and a writer can require that it has not
-- (the key store's and IAM's compare-and-set).
CREATE TABLE doc_generations (
    collection TEXT PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
