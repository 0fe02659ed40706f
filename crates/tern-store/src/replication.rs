//! The replication outbox's records.

use crate::model::VersionRecord;

/// A task to create with a new version: replicate it to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub rule_id: String,
    pub destination: String,
    /// The rule's role, which replication acts as.
    pub role: String,
    pub replica_kms_key_id: Option<String>,
    /// The rule's `Destination.StorageClass`: replicas are stored in it.
    pub storage_class: Option<String>,
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
    pub storage_class: Option<String>,
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
