-- Small documents of the region's other services (KMS keys and aliases, IAM
-- principals), each stored whole as one sealed or plain JSON body. They
-- change rarely and are read into memory at start.
CREATE TABLE docs (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (collection, id)
);
