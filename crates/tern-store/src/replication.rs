//! The replication outbox's records, and the manifest a replica travels with.

use serde::{Deserialize, Serialize};

use crate::model::{ObjectAttrs, VersionRecord};

/// A task to create with a new version: replicate it to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub rule_id: String,
    pub destination: String,
    /// The rule's role, which replication acts as.
    pub role: String,
    pub replica_kms_key_id: Option<String>,
}

/// What a task replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// The whole version (or delete marker).
    Object,
    /// A version's current tag set, after a change made since it replicated.
    Tags,
}

impl TaskKind {
    pub(crate) fn from_db(text: &str) -> Self {
        if text == "TAGS" { Self::Tags } else { Self::Object }
    }
}

/// Where a replication task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Completed,
    Failed,
}

impl TaskState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    pub(crate) fn from_db(text: &str) -> Self {
        match text {
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: i64,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub kind: TaskKind,
    pub rule_id: String,
    pub destination: String,
    pub role: String,
    pub replica_kms_key_id: Option<String>,
    pub size: u64,
    pub state: TaskState,
    pub attempts: u32,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

/// How a leased task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    Completed,
    /// A permanent failure, with its AWS failure reason; never retried by itself.
    Failed(String),
    /// A transient failure: try again from `not_before_ms`.
    Retry {
        not_before_ms: i64,
        reason: String,
    },
}

/// Pending work of one (bucket, rule, destination), for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub bucket: String,
    pub rule_id: String,
    pub destination: String,
    pub operations: u64,
    pub bytes: u64,
}

/// A bucket's replication backlog and failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationReport {
    pub pending: u64,
    pub completed: u64,
    pub failed: u64,
    pub backlog_bytes: u64,
    pub oldest_pending_ms: Option<i64>,
    pub failures: Vec<TaskRecord>,
}

/// A new tag set for one version (the latest if `version_id` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagWrite {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub tags: Vec<(String, String)>,
    /// `None` for a change made here, stamped `now_ms` (or just past the
    /// previous stamp); a replicated change brings the stamp it was made
    /// with and applies only if newer (ties go to the greater tag set), so
    /// regions that exchange changes converge.
    pub stamp: Option<i64>,
    pub now_ms: i64,
    /// Where the change replicates, if it applies: to each destination the
    /// version replicates to (one with a task that did not fail), or, on a
    /// replica, to each (`ReplicaModifications`) destination given.
    pub replication: Vec<NewTask>,
}

/// What a [`TagWrite`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsApplied {
    pub version: VersionRecord,
    /// False when a replicated change was older than the tags in place.
    pub changed: bool,
    /// Replication tasks added.
    pub tasks: u64,
}

/// What a destination needs to apply a replicated tag change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagManifest {
    pub version_id: String,
    pub tags: Vec<(String, String)>,
    pub tags_stamp: i64,
    /// The bucket the change comes from; it is not sent back there.
    pub origin: String,
}

/// What a destination needs to write a replica, besides its bytes: the
/// source version's identity and metadata, and the rule's destination key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaManifest {
    pub version_id: String,
    pub modified_ms: i64,
    pub etag: String,
    pub is_delete_marker: bool,
    pub size: u64,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub tags_stamp: i64,
    /// The rule's `ReplicaKmsKeyID`, for SSE-KMS sources.
    pub replica_kms_key_id: Option<String>,
    /// Set when the replica arrives sealed, as the source stored it (SSE-C,
    /// and SSE-KMS under a multi-region key the destination holds): where
    /// its sealed bytes are. Otherwise the body is plaintext.
    #[serde(default)]
    pub sealed: Option<SealedLayout>,
}

/// Where a sealed replica's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealedLayout {
    /// The request body: one small object's sealed bytes.
    Inline,
    /// Blobs staged at the destination beforehand, in order.
    Blobs(Vec<StagedBlob>),
}

/// A blob the destination staged for one delivery, and the ticket it gave
/// for it: proof, checked when the manifest arrives, that this blob was
/// staged by the same replication session for the same object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBlob {
    #[serde(flatten)]
    pub part: crate::model::BlobPart,
    pub ticket: String,
}
