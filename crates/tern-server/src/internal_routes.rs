//! Tern's own routes between regions on the KMS and IAM front door, apart
//! from the public APIs: only the deployment's root may call them, and no
//! public request can reach them (a public IAM action or KMS target never
//! names them). The client side (`iam_peer`, `kms_peers`) and the serving
//! side (`other_services`) share these names.

/// Internal KMS operations (`x-amz-target: TernInternal.<operation>`).
pub const KMS: &str = "/_tern/kms";
/// The target prefix of internal KMS operations.
pub const KMS_TARGET_PREFIX: &str = "TernInternal.";
/// Whether a principal may take an S3 action here (another region's check).
pub const ACCESS_CHECK: &str = "/_tern/check-access";
/// An IAM query-API call a follower forwards for the caller it authenticated.
pub const IAM_FORWARD: &str = "/_tern/iam/forward";
/// A follower's request for the authority's directory.
pub const IAM_SNAPSHOT: &str = "/_tern/iam/snapshot";
/// On a forwarded IAM call: the caller's ARN, and its session's ARN.
pub const CALLER_HEADER: &str = "x-tern-caller";
pub const CALLER_SESSION_HEADER: &str = "x-tern-caller-session";
/// On a forwarded IAM call: where the caller's request came from, and
/// whether over TLS (signed, like every header of a root-signed call).
pub const CALLER_IP_HEADER: &str = "x-tern-caller-ip";
pub const CALLER_TLS_HEADER: &str = "x-tern-caller-tls";
/// On a forwarded IAM call: the caller's `aws:userid`.
pub const CALLER_USERID_HEADER: &str = "x-tern-caller-userid";
/// On a forwarded IAM call: the region that forwarded it (for the
/// authority's audit record of it).
pub const FORWARDED_BY_HEADER: &str = "x-tern-forwarded-by";

/// Whether `path` is a route only regions call each other on: the bucket
/// registry, replica delivery, and the internal KMS and IAM routes (not the
/// replication admin API, which operators call). With mutual TLS these
/// need the deployment's peer certificate.
#[must_use]
pub fn is_between_regions(path: &str) -> bool {
    path == KMS
        || path == ACCESS_CHECK
        || path.starts_with("/_tern/iam/")
        || path == crate::registry::ROUTE
        || path.starts_with(crate::registry::PREFIX)
        || tern_replication_model::protocol::Route::of(path).is_some()
}
