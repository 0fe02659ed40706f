//! A region's audit trail: every KMS, IAM and STS call and every change to
//! a bucket's configuration, as CloudTrail-shaped JSON lines (`record`),
//! hash-chained under a key only the region holds (`chain`), in files that
//! roll over by size and close with a digest (`files`, `writer`), checked
//! by `verify` and searched by `query`.

pub mod chain;
pub mod files;
pub mod query;
pub mod record;
pub mod verify;
mod writer;

pub use chain::ChainKey;
pub use record::{Call, Durability, Record, Resource, Service, Source};
pub use writer::{AuditLog, BATCH_INTERVAL, NotRecorded, Options};

/// The audit directory of a region whose data lives in `region_dir`.
#[must_use]
pub fn dir_of(region_dir: &std::path::Path) -> std::path::PathBuf {
    region_dir.join("audit")
}

/// Now, to the second, as CloudTrail writes times.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
