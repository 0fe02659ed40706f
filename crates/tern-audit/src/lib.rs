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

use std::path::{Path, PathBuf};

/// Where front-ends of a region that share its stores keep their trails:
/// one each, since a trail's chain has one writer.
const FRONT_ENDS: &str = "front-ends";

/// The audit directory of a region whose data lives in `region_dir`: the
/// region's own, or, for one of several front-ends (named by its host and
/// listen address, so front-ends on several hosts sharing a data
/// directory never write one chain), that front-end's.
#[must_use]
pub fn dir_of(region_dir: &Path, front_end: Option<std::net::SocketAddr>) -> PathBuf {
    let dir = region_dir.join("audit");
    let Some(address) = front_end else { return dir };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = format!("{}-{address}", host.trim());
    // A name of the host's choosing: only what a file name may hold.
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-".contains(c) { c } else { '_' }).collect();
    dir.join(FRONT_ENDS).join(name)
}

/// Every trail of the region: its own, then each front-end's, by name.
///
/// # Errors
/// The front-ends' directory exists but cannot be read.
pub fn trails_of(region_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let own = dir_of(region_dir, None);
    let mut front_ends = match std::fs::read_dir(own.join(FRONT_ENDS)) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    front_ends.sort();
    Ok(std::iter::once(own).chain(front_ends).collect())
}

/// Now, to the second, as CloudTrail writes times.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
