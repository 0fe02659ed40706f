//! The S3 API of one region, on s3s.
//!
//! [`TernS3`] is a thin `impl s3s::S3`: each operation hands its input to the
//! use-case module of its family (`bucket`, `object`, `attributes`, `list`,
//! `multipart`, `tagging`, `replication`), each a set of methods on [`Region`]. Storage is
//! reached only through the `tern-store` traits (bucket configurations as
//! versioned documents, `stored`), and the global bucket namespace only
//! through [`BucketRegistry`]. Replication's rules and wire protocol are
//! `tern-replication-model`'s; this crate parses, plans and receives.

pub mod access;
mod attributes;
pub mod audit;
mod body;
mod bucket;
mod bucket_policy;
mod copy_source;
mod customer_key;
mod encryption;
mod error;
mod lifecycle;
mod list;
mod md5_lanes;
mod multipart;
mod object;
mod read;
mod region;
mod registry;
mod replication;
mod s3_impl;
mod sse;
mod stored;
mod tagging;
mod upload_checksum;
mod wire;

pub use bucket_policy::{BucketPolicies, PublicAccessBlock};
pub use copy_source::{SourceConditions, SourceMeta, SourceRead};
pub use encryption::{BUCKET_KEY_PERIOD, BucketEncryption, Sse};
pub use error::{REQUEST_TIMEOUT_TEXT, access_denied};
pub use lifecycle::{LifecycleClock, LifecycleCursors, LifecycleReport};
pub use md5_lanes::Md5Lanes;
pub use region::Region;
pub use registry::{BucketRegistry, PeerBuckets, RegistryEntry, RegistryError};
pub use replication::{RuleCheck, require_replication};
pub use s3_impl::TernS3;
pub use sse::KEK_PURPOSE;
