//! Storage of one region: metadata (`MetaStore`), object bytes (`BlobStore`)
//! and the small documents of the other services (`DocStore`).
//!
//! Both are narrow traits whose contracts are written down as test suites in
//! [`contract`]; every engine must pass them. The embedded engines are `SQLite`
//! ([`SqliteMeta`]) and plain files ([`LocalBlobs`]).
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
mod meta;
mod model;
pub mod private;
mod replication;
mod sqlite;
mod sweep;

pub use blob::{BlobStore, ByteStream, LocalBlobs};
pub use docs::{DocStore, DocWrite};
pub use error::StoreError;
pub use meta::MetaStore;
pub use model::*;
pub use replication::{
    Backlog, NewTask, ReplicationReport, TagWrite, TagsApplied, TaskKind, TaskOutcome, TaskRecord, TaskState,
};
pub use sqlite::SqliteMeta;
pub use sweep::sweep_orphans;

pub type StoreResult<T> = Result<T, StoreError>;
