/// What a store operation can fail with. Domain outcomes callers branch on are
/// variants; engine failures are `Io`/`Db` and become 500s upstream.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bucket already exists")]
    BucketExists,
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such version")]
    NoSuchVersion,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    /// A write conditional on the key's current object found none.
    #[error("no such key")]
    NoSuchKey,
    /// A completed upload named a part that is not the upload's as it now
    /// stands (it was uploaded again meanwhile).
    #[error("a part changed while the upload completed")]
    PartChanged,
    #[error("request body: {0}")]
    Body(std::io::Error),
    #[error("blob {0} is missing")]
    BlobMissing(String),
    #[error("blob {0} already belongs to another version or part")]
    BlobInUse(String),
    /// Another writer changed the collection since the caller read it.
    #[error("the documents of {0} changed meanwhile")]
    Conflict(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The database could not be reached: its server is named, never a password.
    #[error("cannot reach PostgreSQL at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// The database's schema has a migration this binary does not know.
    #[error(
        "the database's schema has migration {0}, which this Tern does not know: a newer Tern made it; run that version or newer"
    )]
    SchemaTooNew(i64),
    /// The write ran, but its transaction did not commit (shared by every
    /// write of the batch).
    #[error("the write was not committed: {0}")]
    NotCommitted(#[source] std::sync::Arc<sqlx::Error>),
}

impl StoreError {
    /// Whether the engine refused a value the caller sent (PostgreSQL's data
    /// exceptions, class 22: a NUL character in text, say, which `SQLite`
    /// would have kept): the request's fault, and nothing was written.
    #[must_use]
    pub fn is_refused_value(&self) -> bool {
        matches!(self, Self::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c.starts_with("22")))
    }

    /// Whether a write that failed so may have committed all the same (the
    /// connection went away around its COMMIT): its blobs must stay, for
    /// the sweep to judge by what the metadata names.
    #[must_use]
    pub fn may_have_committed(&self) -> bool {
        self.is_unavailable()
    }

    /// Whether the engine could not be reached, or went away mid-request
    /// (a database restarting, a network between): nothing is wrong with
    /// the request, and it may succeed if sent again shortly.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Io(e) => unreachable_mount(e),
            Self::Db(e) => unreachable_engine(e),
            Self::NotCommitted(e) => unreachable_engine(e),
            _ => false,
        }
    }
}

/// A file system that went away (a shared mount's server gone, or the
/// mount stale) rather than a file that is wrong.
fn unreachable_mount(e: &std::io::Error) -> bool {
    // ESTALE, ENOTCONN, ETIMEDOUT, EHOSTDOWN, EHOSTUNREACH, EIO.
    matches!(e.raw_os_error(), Some(116 | 107 | 110 | 112 | 113 | 5))
}

fn unreachable_engine(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Connection exceptions (08…), the server shutting down or starting
        // (57P01-57P03), a statement cancelled (57014), no connection slot
        // (53300), a full disk (53100), a standby after a failover (25006).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "57014" | "53300" | "53100" | "25006")
        }),
        _ => false,
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
