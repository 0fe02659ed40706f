//! What the S3 layer, the replication worker and the region server agree on
//! about cross-region replication, in one place so that no copy can drift:
//!
//! - [`rules`]: a bucket's replication configuration as Tern stores it, and
//!   which rule covers which version (the outbox is planned from it; the
//!   worker and `tern replication check` read it).
//! - [`protocol`]: the inter-region protocol — routes, headers, the
//!   manifests a replica and a tag change travel with, the session
//!   replication acts in.
//! - [`reason`]: AWS's failure reasons, each with what an operator should fix.
//!
//! No I/O of its own (it uses `tern-store`'s record types only): the S3
//! layer converts rules from and to S3's XML, the worker and the server
//! speak HTTP.

pub mod protocol;
pub mod reason;
pub mod rules;

pub use reason::{Failure, FailureReason};
pub use rules::{Candidate, Destination, Filter, MetricsConfig, ReplicationConfig, Rule, TagPair};
