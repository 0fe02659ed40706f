-- Each collection of documents counts the batches that changed it, so a
-- front-end can tell another changed it and a writer can require that
-- nobody did (the key store's and IAM's compare-and-set).
CREATE TABLE doc_generations (
    collection TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
