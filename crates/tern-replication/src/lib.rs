//! Cross-region replication: the outbox consumer of one region.
//!
//! A [`Replicator`] leases due tasks from the region's outbox (written in
//! the same transaction as the versions they replicate), replicates each as
//! the rule's role — reading the source version through this region's own
//! S3 API and delivering it to the destination region's replica endpoint,
//! both over signed HTTP, so every permission check of both regions applies
//! — and records the outcome: COMPLETED, FAILED with the AWS failure reason,
//! or a retry with capped exponential backoff for transient trouble. Leases
//! are renewed while the work goes on; one that runs out (its worker died,
//! perhaps with its whole front-end) hands the task to any worker of the
//! region.

mod reasons;
mod sealed;
mod signing;
mod transfer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use tern_iam::Iam;
use tern_replication_model::FailureReason;
use tern_store::{BlobStore, MetaStore, TaskOutcome, TaskRecord};
use tokio::sync::Notify;

/// How often the outbox is polled when nothing wakes the replicator.
const POLL: Duration = Duration::from_millis(250);
/// Tasks replicated at once.
const CONCURRENCY: usize = 8;
/// Tasks leased per round.
const BATCH: usize = 64;

/// Where buckets and regions are, as replication needs to know.
#[async_trait]
pub trait Topology: Send + Sync {
    /// The region holding `bucket`, if any.
    async fn region_of(&self, bucket: &str) -> Result<Option<String>, String>;
    /// The S3 endpoint URL of `region`.
    fn endpoint(&self, region: &str) -> Option<String>;
}

/// Told what replication does, so the region can export it as metrics.
pub trait ReplicationObserver: Send + Sync {
    /// A task completed, `latency` after its version was committed.
    fn completed(&self, task: &TaskRecord, latency: Duration);
    fn failed(&self, task: &TaskRecord, reason: FailureReason);
    /// The whole current backlog (series absent from it have none).
    fn backlog(&self, backlog: &[tern_store::Backlog]);
    /// S3 assumed (or failed to assume) a rule's role: `Ok` carries the
    /// session's access key id and expiry (Unix seconds), never its secrets.
    fn role_assumed(&self, _role: &str, _session: Result<(&str, i64), &str>) {}
}

/// What a region's replicator works with.
pub struct Links {
    pub meta: Arc<dyn MetaStore>,
    /// The region's blobs: sealed replicas are sent as stored.
    pub blobs: Arc<dyn BlobStore>,
    pub iam: Arc<Iam>,
    pub topology: Arc<dyn Topology>,
    /// Woken when a commit adds tasks, so replication starts at once.
    pub wake: Arc<Notify>,
    pub observer: Arc<dyn ReplicationObserver>,
    /// Reaches the source's S3 API and the destinations (built from
    /// [`Replicator::http_builder`], with the deployment's TLS trust).
    pub http: reqwest::Client,
    /// How long a task is this worker's without a renewal.
    pub lease: Duration,
}

/// The replication worker of one region.
pub struct Replicator {
    region: String,
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    iam: Arc<Iam>,
    topology: Arc<dyn Topology>,
    wake: Arc<Notify>,
    observer: Arc<dyn ReplicationObserver>,
    http: reqwest::Client,
    lease: Duration,
    sessions: Mutex<HashMap<String, transfer::RoleSession>>,
    /// Destinations that failed transiently since their last success: the
    /// first success after an outage makes their backed-off tasks due at
    /// once, so a backlog drains as soon as its destination is back.
    troubled: Mutex<HashSet<String>>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Replicator {
    /// How replication's HTTP client is made: a short connect timeout, and
    /// ten minutes for a transfer.
    pub fn http_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_mins(10))
            .tcp_nodelay(true)
    }

    #[must_use]
    pub fn new(region: &str, links: Links) -> Self {
        let Links { meta, blobs, iam, topology, wake, observer, http, lease } = links;
        Self {
            region: region.to_owned(),
            meta,
            blobs,
            iam,
            topology,
            wake,
            observer,
            http,
            lease,
            sessions: Mutex::default(),
            troubled: Mutex::default(),
        }
    }

    /// Replicates until the region stops (the returned task is aborted then).
    /// Leases left by a previous process of this region are released first.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match self.meta.release_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tasks = n, "resuming replication left by an interrupted run"),
                Err(e) => tracing::warn!(error = %e, "cannot release old leases; they will expire"),
            }
            loop {
                let busy = self.round().await;
                match self.meta.replication_backlog().await {
                    Ok(backlog) => self.observer.backlog(&backlog),
                    Err(e) => tracing::debug!(error = %e, "replication backlog unknown"),
                }
                if !busy {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        })
    }

    /// One round: lease due tasks and replicate them, renewing the leases
    /// of those not done yet. Whether there were any.
    async fn round(&self) -> bool {
        let lease_ms = millis(self.lease);
        let tasks = match self.meta.lease_tasks(now_ms(), lease_ms, BATCH).await {
            Ok(tasks) => tasks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot lease replication tasks");
                return false;
            }
        };
        let busy = !tasks.is_empty();
        let unfinished: Mutex<HashSet<i64>> = Mutex::new(tasks.iter().map(|t| t.id).collect());
        let work = futures::stream::iter(tasks).for_each_concurrent(CONCURRENCY, |task| {
            let unfinished = &unfinished;
            async move {
                self.settle(&task).await;
                unfinished.lock().expect("unfinished tasks lock").remove(&task.id);
            }
        });
        let renewing = async {
            loop {
                tokio::time::sleep(self.lease / 3).await;
                let ids: Vec<i64> = unfinished.lock().expect("unfinished tasks lock").iter().copied().collect();
                if let Err(e) = self.meta.renew_leases(&ids, now_ms() + lease_ms).await {
                    tracing::warn!(error = %e, "replication leases not renewed; another worker may take the tasks over");
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = renewing => {}
        }
        busy
    }

    /// Replicates one task and records how it went.
    async fn settle(&self, task: &TaskRecord) {
        let outcome = self.replicate(task).await;
        match &outcome {
            TaskOutcome::Failed(_) => {}
            TaskOutcome::Completed => {
                let latency = u64::try_from(now_ms() - task.created_ms).unwrap_or(0);
                self.observer.completed(task, Duration::from_millis(latency));
            }
            TaskOutcome::Retry { .. } => {
                self.troubled.lock().expect("troubled set lock").insert(task.destination.clone());
            }
        }
        if let Err(e) = self.meta.finish_task(task.id, &outcome, now_ms()).await {
            tracing::warn!(error = %e, "replication outcome not recorded; the lease will run out and retry");
        }
        if outcome == TaskOutcome::Completed {
            self.reached(&task.destination).await;
        }
    }

    /// `destination` took a replica: if it was in trouble, its waiting
    /// tasks are due now rather than when their backoff ends.
    async fn reached(&self, destination: &str) {
        if !self.troubled.lock().expect("troubled set lock").remove(destination) {
            return;
        }
        match self.meta.expedite(destination, now_ms()).await {
            Ok(n) => tracing::info!(%destination, tasks = n, "destination reachable again; resuming its backlog"),
            Err(e) => tracing::warn!(error = %e, "backed-off tasks stay scheduled"),
        }
        self.wake.notify_one();
    }

    async fn replicate(&self, task: &TaskRecord) -> TaskOutcome {
        match self.transfer(task).await {
            Ok(()) => TaskOutcome::Completed,
            Err(reasons::Trouble::Permanent(failure)) => {
                tracing::warn!(bucket = %task.bucket, key = %task.key, version = %task.version_id, %failure, "replication failed");
                self.observer.failed(task, failure.reason);
                TaskOutcome::Failed(failure.to_string())
            }
            Err(reasons::Trouble::Transient(why)) => {
                let backoff = reasons::backoff(task.attempts);
                TaskOutcome::Retry { not_before_ms: now_ms() + backoff, reason: why }
            }
        }
    }
}
