//! Storage of one region, behind three traits whose contracts are written
//! down as test suites in [`contract`]; every engine must pass them:
//!
//! - [`BlobStore`]: object bytes, written once and read by range (narrow).
//! - [`DocStore`]: the small documents KMS and IAM keep (narrow).
//! - [`MetaStore`]: everything else a region keeps, as one transactional
//!   surface, because its writes must commit together (a version with its
//!   replication tasks, a tag change with its own). Read its methods in the
//!   groups the trait and [`contract::meta_suite`] are divided into:
//!   buckets and their configurations; versions and tags; multipart
//!   uploads; the global bucket registry; housekeeping (the sweeper); and
//!   the replication outbox. Each method is one atomic transaction.
//!
//! The embedded engines are `SQLite` ([`SqliteMeta`]) and plain files
//! ([`LocalBlobs`]). PostgreSQL ([`PgStore`], for a region of several
//! front-ends) passes the same contracts, and [`contract::front_ends_suite`]
//! besides: what several front-ends of one region need of it. The store keeps what it is given: bucket configurations
//! are opaque text (their schema and versions belong to `tern-s3`), and
//! states are typed ([`ReplicationStatus`], [`SseAlgorithm`], [`TaskState`])
//! and turned into text only in SQL.
//!
//! Write ordering that makes `kill -9` safe: blob bytes are written to a temp
//! file and renamed into place, and both the bytes and the new name are
//! fsync'd *before* the metadata transaction that references them commits. A
//! crash in between leaves an unreferenced blob, which [`sweep_orphans`]
//! removes at the next start.

mod blob;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
mod docs;
mod error;
mod group_commit;
mod listing;
mod meta;
pub mod migrate;
mod model;
mod postgres;
pub mod private;
mod replication;
mod rows;
mod sqlite;
mod sweep;

pub use blob::{BlobStore, ByteStream, LocalBlobs};
pub use docs::{DocStore, DocWrite, Docs};
pub use error::StoreError;
pub use meta::MetaStore;
pub use model::*;
pub use postgres::PgStore;
pub use replication::{
    Backlog, NewTask, ReplicationReport, TagWrite, TagsApplied, TaskKind, TaskOutcome, TaskRecord, TaskState,
};
pub use sqlite::SqliteMeta;
pub use sweep::sweep_orphans;

pub type StoreResult<T> = Result<T, StoreError>;
