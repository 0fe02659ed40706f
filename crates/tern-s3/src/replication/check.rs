//! The diagnosis behind `tern replication check`: whether each rule of a
//! bucket can work, evaluated without moving data.

use std::collections::BTreeMap;

use s3s::S3Result;
use tern_iam::policy::{Principal, RequestContext, S3_SERVICE};
use tern_replication_model::{Rule, protocol};
use tern_store::SseAlgorithm;

use crate::region::Region;

/// What `tern replication check` found for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    pub rule: String,
    pub destination: String,
    /// What is missing and where; empty when the rule can work.
    pub problems: Vec<String>,
}

impl Region {
    /// Evaluates, without moving data, whether every rule of `bucket` can
    /// work: the role's trust policy, its S3 permissions in both regions,
    /// the destination bucket, and — for SSE-KMS objects — its KMS
    /// permissions and key states in both regions (key policies, grants,
    /// identity policies). AWS accepts configurations that can never work;
    /// this says why before the first object fails.
    pub async fn check_replication(&self, bucket: &str) -> S3Result<Vec<RuleCheck>> {
        let config = self.existing_replication_config(bucket).await?;
        let role = config.role.clone();
        let principal = Principal::assumed_role(&self.account_id, &role, protocol::SESSION_NAME, Some(S3_SERVICE));
        let mut checks = Vec::new();
        for rule in &config.rules {
            let mut problems = Vec::new();
            if let Err(why) = self.iam.trusts_service(&role, S3_SERVICE) {
                problems.push(why);
            }
            self.check_rule(bucket, rule, &principal, &mut problems).await;
            checks.push(RuleCheck { rule: rule.id.clone(), destination: rule.destination.bucket.clone(), problems });
        }
        Ok(checks)
    }

    async fn check_rule(&self, bucket: &str, rule: &Rule, acting: &Principal, problems: &mut Vec<String>) {
        let prefix = rule.filter.prefix();
        let destination = &rule.destination.bucket;
        // (action, the bucket it acts on, resource): each decided where its bucket is.
        let mut needs = vec![
            ("s3:GetObjectVersionForReplication", bucket, format!("arn:aws:s3:::{bucket}/{prefix}*")),
            ("s3:ReplicateObject", destination.as_str(), format!("arn:aws:s3:::{destination}/{prefix}*")),
        ];
        if rule.delete_markers != Some(false) {
            needs.push(("s3:ReplicateDelete", destination, format!("arn:aws:s3:::{destination}/{prefix}*")));
        }
        let destination_region = match self.registry.lookup(destination).await {
            Ok(Some(region)) if region != self.name => Some(region),
            _ => None,
        };
        for (action, on, resource) in needs {
            let refusal = match &destination_region {
                Some(region) if on == destination => self.peers.s3_check(region, acting, action, &resource).await.err(),
                _ => self
                    .authorize_in(acting, action, &resource, &RequestContext::of(acting))
                    .await
                    .err()
                    .map(|denied| denied.message().unwrap_or("denied").to_owned()),
            };
            if let Some(why) = refusal {
                problems.push(format!("{} needs {action} on {resource} ({why})", acting.arn));
            }
        }
        if let Err(e) = self.check_destination(destination).await {
            problems.push(format!("destination {destination}: {}", e.message().unwrap_or("unusable")));
        }
        if rule.sse_kms_objects == Some(true) {
            self.check_rule_keys(bucket, rule, acting, problems).await;
        }
    }

    /// The KMS side of a rule for SSE-KMS objects: `kms:Decrypt` on the
    /// source bucket's default key here, `kms:GenerateDataKey` on
    /// `ReplicaKmsKeyID` in the destination's region, both through S3.
    async fn check_rule_keys(&self, bucket: &str, rule: &Rule, acting: &Principal, problems: &mut Vec<String>) {
        let caller = self.kms_caller(acting);
        if let Ok(Some(default)) = self.bucket_encryption(bucket).await
            && let Some(key) = default.kms_key_id.filter(|_| default.algorithm == SseAlgorithm::AwsKms)
            && let Err(e) = self.sse.kms.may_use(&caller, "Decrypt", &key, &BTreeMap::new())
        {
            problems.push(format!("source key {key} in {}: {}: {}", self.name, e.code, e.message));
        }
        let Some(key) = &rule.destination.replica_kms_key_id else { return };
        let Ok(Some(region)) = self.registry.lookup(&rule.destination.bucket).await else { return };
        let via = crate::encryption::s3_via(&region);
        let refusal = if region == self.name {
            self.sse
                .kms
                .may_use(&self.kms_caller(acting), "GenerateDataKey", key, &BTreeMap::new())
                .err()
                .map(|e| format!("{}: {}", e.code, e.message))
        } else {
            self.peers.kms_check(&region, acting, "GenerateDataKey", key, &via).await.err()
        };
        if let Some(why) = refusal {
            problems.push(format!("ReplicaKmsKeyID {key} in {region}: {why}"));
        }
    }
}
