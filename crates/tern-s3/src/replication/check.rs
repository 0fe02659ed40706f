//! The diagnosis behind `tern replication check`: whether each rule of a
//! bucket can work, evaluated without moving data.

use std::collections::{BTreeMap, BTreeSet};

use s3s::S3Result;
use tern_iam::policy::{Principal, RequestContext, S3_SERVICE};
use tern_replication_model::{Rule, protocol};
use tern_store::{ObjectAttrs, SseAlgorithm};

use crate::region::Region;

/// What `tern replication check` found for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    pub rule: String,
    pub destination: String,
    /// What is missing and where; empty when the rule can work.
    pub problems: Vec<String>,
    /// What a rule that works will quietly not do as its owner may expect:
    /// objects it skips, keys readers lack in the destination's region,
    /// encryption the replicas will not have.
    pub warnings: Vec<String>,
}

/// How many of a rule's current objects a check reads for their encryption.
const SAMPLED_OBJECTS: usize = 10_000;

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
            let warnings = self.rule_warnings(bucket, rule).await;
            checks.push(RuleCheck {
                rule: rule.id.clone(),
                destination: rule.destination.bucket.clone(),
                problems,
                warnings,
            });
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

    /// What a rule will skip or store otherwise than its owner may expect,
    /// from the bucket's default encryption, a sample of its objects, and
    /// the destination's default encryption.
    async fn rule_warnings(&self, bucket: &str, rule: &Rule) -> Vec<String> {
        let prefix = rule.filter.prefix();
        let default_key = match self.bucket_encryption(bucket).await {
            Ok(Some(d)) if d.algorithm == SseAlgorithm::AwsKms => Some(d.kms_key_id.unwrap_or_else(|| "aws/s3".into())),
            _ => None,
        };
        let sample = self.meta.sample_current_attrs(bucket, prefix, SAMPLED_OBJECTS).await.unwrap_or_default();
        let mut warnings = Vec::new();
        // (A ReplicaKmsKeyID without that selection is refused when the rule is put.)
        if rule.sse_kms_objects != Some(true) {
            warnings.extend(skipped_kms_objects(default_key.as_deref(), &sample, prefix));
        }
        let destination = &rule.destination.bucket;
        let Ok(Some(region)) = self.registry.lookup(destination).await else { return warnings };
        if region != self.name {
            warnings.extend(self.envelope_keys_missing_in(&region, &sample));
        }
        warnings.extend(self.destination_default_differs(rule, &region).await);
        warnings
    }

    /// Multi-Region keys of client-side encrypted objects without a replica
    /// in `region`: the objects replicate, but no reader there can decrypt.
    fn envelope_keys_missing_in(&self, region: &str, sample: &[ObjectAttrs]) -> Vec<String> {
        let keys: BTreeSet<String> = sample.iter().filter_map(envelope_key_id).collect();
        keys.iter()
            .filter_map(|key| match self.sse.kms.family(key) {
                Ok((arn, Some(regions))) if !regions.iter().any(|r| r == region) => Some(format!(
                    "client-side encrypted objects are under the multi-Region key {arn}, which has no replica \
                     in {region}: they replicate, but no reader there can decrypt them (aws kms replicate-key \
                     --key-id {arn} --replica-region {region})"
                )),
                _ => None,
            })
            .collect()
    }

    /// The destination encrypts new objects under a KMS key by default, but
    /// replicas keep their source's encryption, as on AWS.
    async fn destination_default_differs(&self, rule: &Rule, region: &str) -> Option<String> {
        let destination = &rule.destination.bucket;
        let default = if region == self.name {
            self.bucket_encryption(destination).await.ok().flatten()
        } else {
            self.peers.default_encryption(region, destination).await.ok().flatten()
        }?;
        if default.algorithm != SseAlgorithm::AwsKms {
            return None;
        }
        let key = default.kms_key_id.unwrap_or_else(|| "aws/s3".into());
        let kms_replicas = match &rule.destination.replica_kms_key_id {
            Some(replica_key) if rule.sse_kms_objects == Some(true) => {
                format!(", and SSE-KMS objects are encrypted under ReplicaKmsKeyID {replica_key}")
            }
            _ => String::new(),
        };
        Some(format!(
            "{destination} encrypts new objects with SSE-KMS under {key} by default, but replicas keep their \
             source's encryption: SSE-S3 objects stay SSE-S3{kms_replicas}"
        ))
    }
}

/// How the rule's configuration would select SSE-KMS objects.
const NOT_SELECTED: &str = "SourceSelectionCriteria.SseKmsEncryptedObjects";

/// SSE-KMS objects a rule that does not select them will skip: new ones
/// under the bucket's default key, and those of the sample.
fn skipped_kms_objects(default_key: Option<&str>, sample: &[ObjectAttrs], prefix: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(key) = default_key {
        warnings.push(format!(
            "the bucket encrypts new objects with SSE-KMS under {key} by default, but the rule does not select \
             SSE-KMS objects ({NOT_SELECTED}): they will not replicate"
        ));
    }
    let existing = sample.iter().filter(|a| a.encryption == Some(SseAlgorithm::AwsKms)).count();
    if existing > 0 {
        let of =
            if sample.len() == SAMPLED_OBJECTS { format!(" (of the first {SAMPLED_OBJECTS})") } else { String::new() };
        warnings.push(format!(
            "{existing} current object(s){of} under '{prefix}' are SSE-KMS and will not replicate: the rule does \
             not select SSE-KMS objects ({NOT_SELECTED})"
        ));
    }
    warnings
}

/// The KMS key an S3 Encryption Client envelope (V2 or V3, in the object's
/// metadata) wrapped its data key with, read from the KMS blob's clear header.
fn envelope_key_id(attrs: &ObjectAttrs) -> Option<String> {
    let wrapped = ["x-amz-3", "x-amz-key-v2"].iter().find_map(|name| attrs.user_metadata.get(*name))?;
    let blob = crate::body::base64_decode(wrapped)?;
    tern_crypto::kms_blob::header(&blob).ok().map(|header| header.key_id)
}
