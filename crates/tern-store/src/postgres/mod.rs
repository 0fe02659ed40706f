//! The shared metadata engine: PostgreSQL through sqlx, for a region served
//! by several front-ends (schema in `migrations-postgres/`).
//!
//! What its own statements ask of the database stays within what
//! PostgreSQL-wire distributed databases (CockroachDB, YugabyteDB) also
//! accept: no advisory locks, no LISTEN/NOTIFY as a correctness dependency,
//! and a transaction that fails to serialize (SQLSTATE 40001) is run again,
//! a bounded number of times. (sqlx's migrator still takes an advisory lock
//! while it brings the schema up to date; to be replaced before those
//! databases are claimed.) A commit is durable once acknowledged (`synchronous_commit` on,
//! PostgreSQL's default).

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};

use crate::docs::{DocStore, DocWrite};
use crate::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// Runs of a transaction that failed to serialize, before giving up.
const MAX_ATTEMPTS: u32 = 5;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`; libpq's
    /// `PG*` environment variables fill in what it leaves out, `PGPASSWORD`
    /// included, so no password need be written down), brings the schema up
    /// to date, and refuses a schema a newer Tern made.
    ///
    /// # Errors
    /// `Unreachable` naming the server (never the password), `SchemaTooNew`,
    /// or the database's own error.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let server = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        // One attempt first, so a server that is not there is said at once.
        let unreachable = |e: sqlx::Error| StoreError::Unreachable { server: server.clone(), reason: e.to_string() };
        PgConnection::connect_with(&options).await.map_err(unreachable)?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        match MIGRATOR.run(&pool).await {
            Ok(()) => Ok(Self { pool }),
            Err(sqlx::migrate::MigrateError::VersionMissing(version)) => Err(StoreError::SchemaTooNew(version)),
            Err(e) => Err(e.into()),
        }
    }

    /// Closes the pool; every acknowledged write has committed.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `work` in one transaction, again (at most [`MAX_ATTEMPTS`]
    /// times) when the database could not serialize it.
    async fn transaction<T: Send>(
        &self,
        work: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, StoreResult<T>> + Send + Sync,
    ) -> StoreResult<T> {
        let mut attempt = 1;
        loop {
            let mut tx = self.pool.begin().await?;
            let result = match work(&mut tx).await {
                Ok(value) => tx.commit().await.map(|()| value).map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if attempt < MAX_ATTEMPTS && is_serialization_failure(&e) => attempt += 1,
                other => return other,
            }
        }
    }
}

/// SQLSTATE 40001 (serialization failure) or 40P01 (deadlock): the
/// transaction did nothing and may run again.
fn is_serialization_failure(e: &StoreError) -> bool {
    let StoreError::Db(sqlx::Error::Database(db)) = e else { return false };
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
}

#[async_trait]
impl DocStore for PgStore {
    async fn load_docs(&self, collection: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT id, body FROM docs WHERE collection = $1 ORDER BY id COLLATE \"C\"")
            .bind(collection)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("body")?))).collect()
    }

    async fn write_docs(&self, writes: Vec<DocWrite>) -> StoreResult<()> {
        let writes = std::sync::Arc::new(writes);
        self.transaction(move |conn| {
            let writes = std::sync::Arc::clone(&writes);
            Box::pin(async move {
                for write in writes.iter() {
                    match &write.body {
                        Some(body) => {
                            sqlx::query(
                                "INSERT INTO docs (collection, id, body) VALUES ($1, $2, $3) \
                             ON CONFLICT (collection, id) DO UPDATE SET body = EXCLUDED.body",
                            )
                            .bind(write.collection)
                            .bind(&write.id)
                            .bind(body)
                            .execute(&mut *conn)
                            .await?
                        }
                        None => {
                            sqlx::query("DELETE FROM docs WHERE collection = $1 AND id = $2")
                                .bind(write.collection)
                                .bind(&write.id)
                                .execute(&mut *conn)
                                .await?
                        }
                    };
                }
                Ok(())
            })
        })
        .await
    }
}
