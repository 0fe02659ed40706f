//! Identities and authorization for the whole deployment:
//!
//! - [`policy`]: the IAM policy language and its evaluator;
//! - [`Iam`]: users, access keys, roles and inline policies, kept by one
//!   authority region and followed by the others; authentication of access
//!   keys and STS sessions; the IAM and STS query APIs.

pub mod api;
pub mod error;
pub mod model;
pub mod policy;
mod service;
pub mod sessions;
pub mod sts;
pub mod xml;

pub use error::{IamError, IamResult};
pub use service::{FOLLOW_PERIOD, Iam, IamAuthority, Identity, RootIdentity, SnapshotRequest};
