//! The outbox: which replication tasks a write commits with. Nothing
//! acknowledged can lose its replication, because the tasks are in the same
//! commit as the data.

use s3s::S3Result;
use tern_replication_model::{Candidate, ReplicationConfig, Rule};
use tern_store::{KeyStart, NewTask, NewVersion, ReplicationStatus, VersionRecord};

use crate::error::store_error;
use crate::region::Region;

impl Region {
    /// Gives a version a client wrote its replication tasks (committed with
    /// it: the outbox) and its initial `x-amz-replication-status`. Replicas
    /// are written by replication itself and never pass here, so they are
    /// never replicated again.
    pub(crate) async fn plan_replication(&self, version: &mut NewVersion) -> S3Result<()> {
        version.replication.clear();
        version.attrs.replication_status = None;
        version.attrs.replica = false;
        let Some(config) = self.replication_config(&version.bucket).await? else { return Ok(()) };
        version.replication = config.tasks_covering(&Candidate::from(&*version));
        if !version.replication.is_empty() {
            version.attrs.replication_status = Some(ReplicationStatus::Pending);
        }
        Ok(())
    }

    /// Where a new tag set of `version` replicates, except to `origin` (the
    /// bucket a replicated change came from): from a source version, every
    /// enabled rule's destination (the store keeps those the version goes
    /// to); from a replica, the destinations of rules that cover it and
    /// enable `ReplicaModifications`.
    pub(crate) async fn plan_tag_replication(
        &self,
        version: &VersionRecord,
        tags: &[(String, String)],
        origin: Option<&str>,
    ) -> S3Result<Vec<NewTask>> {
        let Some(config) = self.replication_config(&version.bucket).await? else { return Ok(Vec::new()) };
        let candidate = Candidate { tags, ..Candidate::from(version) };
        let applies = |r: &&Rule| {
            let goes_back = !version.attrs.replica || r.replica_modifications == Some(true) && r.covers(&candidate);
            r.enabled && goes_back && Some(r.destination.bucket.as_str()) != origin
        };
        Ok(config.tasks_for(config.rules.iter().filter(applies)))
    }

    /// `ExistingObjectReplication`: gives the objects already in the bucket
    /// the tasks their rules would have given them (destinations a version
    /// already has a task for are skipped, so putting a configuration again
    /// replicates nothing twice). Replicas and delete markers are left alone.
    pub(super) async fn backfill(&self, bucket: &str, config: &ReplicationConfig) -> S3Result<()> {
        let rules: Vec<&Rule> = config.rules.iter().filter(|r| r.existing_objects == Some(true)).collect();
        if rules.is_empty() {
            return Ok(());
        }
        let mut start = KeyStart::Beginning;
        loop {
            let page = self.meta.list_versions(bucket, "", &start, 1000).await.map_err(store_error)?;
            for summary in page.iter().filter(|s| !s.is_delete_marker) {
                let found = self.meta.get_version(bucket, &summary.key, Some(&summary.version_id)).await;
                let Some(version) = found.map_err(store_error)? else { continue };
                if version.attrs.replica {
                    continue;
                }
                let candidate = Candidate::from(&version);
                let tasks = config.tasks_for(rules.iter().copied().filter(|r| r.covers(&candidate)));
                self.meta.add_tasks(bucket, &version.key, &version.version_id, &tasks).await.map_err(store_error)?;
            }
            let Some(last) = page.last() else { break };
            start = KeyStart::AfterVersion { key: last.key.clone(), version_id: last.version_id.clone() };
            self.replication_wake.notify_one();
        }
        Ok(())
    }
}
