//! Moving an embedded region's metadata into PostgreSQL: every table is
//! copied, in order, in one PostgreSQL transaction that commits only once
//! both sides agree, table by table, on the number of rows and a SHA-256
//! over them (JSON compared as values, not as text, since PostgreSQL keeps
//! it as `jsonb`). The source is read in one `SQLite` transaction, so it is
//! one moment's state even if something wrote meanwhile (nothing should:
//! the region is stopped).
//!
//! Running it again is safe: a target that already holds exactly the
//! source's data is reported as such and left alone; one that holds
//! anything else is refused, never mixed into.

use futures::{StreamExt as _, TryStreamExt as _};
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, QueryBuilder};

use crate::rows::Columns;
use crate::{PgStore, SqliteMeta, StoreResult};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
    Bytes,
    /// JSON text in `SQLite`, `jsonb` in PostgreSQL.
    Json,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// The order rows are read in on both sides: the arrival order where
    /// it means something (versions of a key, tasks), else the key.
    order: &'static [&'static str],
}

use Kind::{Bool, Bytes, Int, Json, Text};

/// Every table, parents first. Leases are not copied: a task is due on the
/// new engine as soon as a worker there looks. `key_locks` is derived.
const TABLES: &[Table] = &[
    Table { name: "buckets", columns: &[("name", Text), ("created_ms", Int), ("versioning", Text)], order: &["name"] },
    Table {
        name: "versions",
        columns: &[
            ("bucket", Text),
            ("key", Text),
            ("version_id", Text),
            ("is_latest", Bool),
            ("is_delete_marker", Bool),
            ("modified_ms", Int),
            ("size", Int),
            ("etag", Text),
            ("attrs", Json),
            ("tags", Json),
            ("tags_stamp", Int),
            ("inline_data", Bytes),
            ("parts", Json),
        ],
        order: &["id"],
    },
    Table {
        name: "uploads",
        columns: &[
            ("upload_id", Text),
            ("bucket", Text),
            ("key", Text),
            ("created_ms", Int),
            ("attrs", Json),
            ("tags", Json),
        ],
        order: &["upload_id"],
    },
    Table {
        name: "parts",
        columns: &[
            ("upload_id", Text),
            ("part_number", Int),
            ("size", Int),
            ("etag", Text),
            ("blob", Text),
            ("modified_ms", Int),
            ("checksum", Text),
            ("binding", Text),
        ],
        order: &["upload_id", "part_number"],
    },
    Table { name: "blob_owners", columns: &[("blob", Text)], order: &["blob"] },
    Table {
        name: "bucket_registry",
        columns: &[("name", Text), ("region", Text), ("created_ms", Int)],
        order: &["name"],
    },
    Table {
        name: "bucket_configs",
        columns: &[("bucket", Text), ("kind", Text), ("body", Text)],
        order: &["bucket", "kind"],
    },
    Table {
        name: "replication_tasks",
        columns: &[
            ("bucket", Text),
            ("key", Text),
            ("version_id", Text),
            ("kind", Text),
            ("rule_id", Text),
            ("destination", Text),
            ("role", Text),
            ("replica_kms_key_id", Text),
            ("storage_class", Text),
            ("size", Int),
            ("state", Text),
            ("attempts", Int),
            ("not_before_ms", Int),
            ("reason", Text),
            ("created_ms", Int),
            ("finished_ms", Int),
        ],
        order: &["id"],
    },
    Table {
        name: "docs",
        columns: &[("collection", Text), ("id", Text), ("body", Bytes)],
        order: &["collection", "id"],
    },
    Table { name: "doc_generations", columns: &[("collection", Text), ("generation", Int)], order: &["collection"] },
];

/// Rows inserted per statement.
const BATCH: usize = 500;

/// One table's rows, counted and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: &'static str,
    pub rows: u64,
    pub sha256: String,
}

/// What a migration found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// The target was empty and now holds the source's data, verified.
    Copied(Vec<TableSummary>),
    /// The target held exactly the source's data already.
    AlreadyThere(Vec<TableSummary>),
    /// The target holds other data: nothing was written. Each table's
    /// summary on the source and on the target.
    TargetDiffers(Vec<(TableSummary, TableSummary)>),
}

enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
}

fn cells(row: &impl Columns, table: &Table) -> StoreResult<Vec<Cell>> {
    table
        .columns
        .iter()
        .map(|(name, kind)| {
            Ok(match kind {
                Text | Json => Cell::Text(row.maybe_text(name)?),
                Int => Cell::Int(row.maybe_int(name)?),
                Bool => Cell::Bool(row.flag(name)?),
                Bytes => Cell::Bytes(row.maybe_bytes(name)?),
            })
        })
        .collect()
}

/// Feeds one row to `hash`, every cell tagged and length-prefixed, JSON
/// as its value re-serialized (object keys sorted).
fn hash_row(hash: &mut Sha256, table: &Table, row: &[Cell]) -> StoreResult<()> {
    for ((_, kind), cell) in table.columns.iter().zip(row) {
        let bytes: Option<Vec<u8>> = match (kind, cell) {
            (Json, Cell::Text(Some(text))) => {
                Some(serde_json::from_str::<serde_json::Value>(text)?.to_string().into_bytes())
            }
            (_, Cell::Text(text)) => text.as_ref().map(|t| t.as_bytes().to_vec()),
            (_, Cell::Int(n)) => n.map(|n| n.to_le_bytes().to_vec()),
            (_, Cell::Bool(b)) => Some(vec![u8::from(*b)]),
            (_, Cell::Bytes(b)) => b.clone(),
        };
        match bytes {
            None => hash.update([0]),
            Some(bytes) => {
                hash.update([1]);
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
        }
    }
    Ok(())
}

fn select(table: &Table, postgres: bool) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(
            |(name, kind)| {
                if postgres && *kind == Json { format!("{name}::text AS {name}") } else { (*name).to_owned() }
            },
        )
        .collect();
    // Text sorts by byte on both sides (`id` of versions and tasks is a number).
    let is_text = |c: &str| table.columns.iter().any(|(name, kind)| *name == c && *kind == Text);
    let order: Vec<String> = table
        .order
        .iter()
        .map(|c| if postgres && is_text(c) { format!("{c} COLLATE \"C\"") } else { (*c).to_owned() })
        .collect();
    let order = order.join(", ");
    format!("SELECT {} FROM {} ORDER BY {order}", columns.join(", "), table.name)
}

/// One table's rows, counted and hashed.
async fn summary_of(
    table: &'static Table,
    mut rows: impl futures::Stream<Item = StoreResult<Vec<Cell>>> + Unpin,
) -> StoreResult<TableSummary> {
    let (mut hash, mut count) = (Sha256::new(), 0);
    while let Some(row) = rows.try_next().await? {
        hash_row(&mut hash, table, &row)?;
        count += 1;
    }
    Ok(TableSummary { table: table.name, rows: count, sha256: hex::encode(hash.finalize()) })
}

/// Every table of a `SQLite` transaction, counted and hashed.
async fn summarize_sqlite(conn: &mut sqlx::SqliteConnection) -> StoreResult<Vec<TableSummary>> {
    let mut out = Vec::new();
    for table in TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select(table, false))).fetch(&mut *conn);
        out.push(summary_of(table, rows.map(|row| cells(&row?, table))).await?);
    }
    Ok(out)
}

async fn summarize_postgres(conn: &mut sqlx::PgConnection) -> StoreResult<Vec<TableSummary>> {
    let mut out = Vec::new();
    for table in TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select(table, true))).fetch(&mut *conn);
        out.push(summary_of(table, rows.map(|row| cells(&row?, table))).await?);
    }
    Ok(out)
}

/// Copies `source` into `target` (see the module's documentation);
/// `progress` hears of every batch of rows copied, with the total.
pub async fn to_postgres(
    source: &SqliteMeta,
    target: &PgStore,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> StoreResult<Migration> {
    let mut reading = source.reader().acquire().await?;
    let mut snapshot = reading.begin().await?;
    let expected = summarize_sqlite(&mut snapshot).await?;
    let mut tx = target.pool().begin().await?;
    let found = summarize_postgres(&mut tx).await?;
    if found == expected {
        return Ok(Migration::AlreadyThere(expected));
    }
    if found.iter().any(|t| t.rows > 0) {
        return Ok(Migration::TargetDiffers(expected.into_iter().zip(found).collect()));
    }
    let total = expected.iter().map(|t| t.rows).sum();
    let mut copied = 0;
    for table in TABLES {
        let mut stream = sqlx::query(sqlx::AssertSqlSafe(select(table, false))).fetch(&mut *snapshot);
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = stream.try_next().await? {
            batch.push(cells(&row, table)?);
            if batch.len() == BATCH {
                insert(&mut tx, table, std::mem::take(&mut batch)).await?;
                copied += BATCH as u64;
                progress(copied, total);
            }
        }
        copied += batch.len() as u64;
        insert(&mut tx, table, batch).await?;
        progress(copied, total);
    }
    sqlx::query("INSERT INTO key_locks (bucket, key) SELECT DISTINCT bucket, key FROM versions")
        .execute(&mut *tx)
        .await?;
    let written = summarize_postgres(&mut tx).await?;
    if written != expected {
        return Ok(Migration::TargetDiffers(expected.into_iter().zip(written).collect()));
    }
    tx.commit().await?;
    Ok(Migration::Copied(expected))
}

async fn insert(tx: &mut sqlx::PgConnection, table: &Table, rows: Vec<Vec<Cell>>) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let mut q = QueryBuilder::new(format!("INSERT INTO {} ({}) ", table.name, names.join(", ")));
    q.push_values(rows, |mut values, row| {
        for ((_, kind), cell) in table.columns.iter().zip(row) {
            match cell {
                Cell::Text(text) => values.push_bind(text),
                Cell::Int(n) => values.push_bind(n),
                Cell::Bool(b) => values.push_bind(b),
                Cell::Bytes(b) => values.push_bind(b),
            };
            if *kind == Json {
                values.push_unseparated("::jsonb");
            }
        }
    });
    q.build().execute(&mut *tx).await?;
    Ok(())
}
