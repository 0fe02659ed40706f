//! Bucket replication configuration: Put/Get/DeleteBucketReplication with
//! the V2 (and legacy V1) schema, validated as AWS validates it, stored as
//! Tern's own JSON so that GET returns the document as it was put.

use s3s::dto::{self, ReplicationConfiguration, ReplicationRule};
use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tern_iam::policy::{Principal, Request, RequestContext};

use tern_store::{NewTask, NewVersion, Versioning};

use crate::context::Region;
use crate::error::{internal, registry_error, store_error};

const REPLICATION_CONFIG: &str = "replication";
const MAX_RULES: usize = 1000;

/// One tag of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TagPair {
    pub key: String,
    pub value: String,
}

/// A rule's filter in the form it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Filter {
    /// V1: a rule-level `<Prefix>`.
    Legacy(String),
    /// V2 `<Filter/>`: every object.
    All,
    Prefix(String),
    Tag(TagPair),
    And {
        prefix: Option<String>,
        tags: Vec<TagPair>,
    },
}

impl Filter {
    fn prefix(&self) -> &str {
        match self {
            Self::Legacy(p) | Self::Prefix(p) | Self::And { prefix: Some(p), .. } => p,
            _ => "",
        }
    }

    fn tags(&self) -> &[TagPair] {
        match self {
            Self::Tag(t) => std::slice::from_ref(t),
            Self::And { tags, .. } => tags,
            _ => &[],
        }
    }

    /// Whether an object with this key and these tags is in the rule's scope.
    pub(crate) fn matches(&self, key: &str, tags: &[(String, String)]) -> bool {
        key.starts_with(self.prefix())
            && self.tags().iter().all(|t| tags.iter().any(|(k, v)| *k == t.key && *v == t.value))
    }
}

/// The destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Destination {
    /// The bucket's name (the ARN without `arn:aws:s3:::`).
    pub bucket: String,
    pub account: Option<String>,
    pub storage_class: Option<String>,
    pub replica_kms_key_id: Option<String>,
    pub replication_time_minutes: Option<i32>,
    pub metrics: Option<MetricsConfig>,
}

/// Enabled replication metrics, with the event threshold as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetricsConfig {
    pub threshold_minutes: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    pub id: String,
    pub priority: Option<i32>,
    pub enabled: bool,
    pub filter: Filter,
    /// `None` in the V1 schema (markers always replicate there).
    pub delete_markers: Option<bool>,
    pub existing_objects: Option<bool>,
    pub sse_kms_objects: Option<bool>,
    pub replica_modifications: Option<bool>,
    pub destination: Destination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplicationConfig {
    pub role: String,
    pub rules: Vec<Rule>,
}

fn invalid(message: &str) -> s3s::S3Error {
    s3_error!(InvalidRequest, "{message}")
}

fn malformed() -> s3s::S3Error {
    s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
}

/// `Enabled` / `Disabled`, refusing anything else as AWS's schema does.
fn status(value: &str) -> S3Result<bool> {
    match value {
        "Enabled" => Ok(true),
        "Disabled" => Ok(false),
        _ => Err(malformed()),
    }
}

fn tag(t: &dto::Tag) -> S3Result<TagPair> {
    match (&t.key, &t.value) {
        (Some(key), Some(value)) => Ok(TagPair { key: key.clone(), value: value.clone() }),
        _ => Err(malformed()),
    }
}

fn filter(rule: &ReplicationRule) -> S3Result<Filter> {
    let Some(f) = &rule.filter else {
        return Ok(Filter::Legacy(rule.prefix.clone().unwrap_or_default()));
    };
    if rule.prefix.is_some() {
        return Err(malformed());
    }
    match (&f.prefix, &f.tag, &f.and) {
        (None, None, None) => Ok(Filter::All),
        (Some(p), None, None) => Ok(Filter::Prefix(p.clone())),
        (None, Some(t), None) => Ok(Filter::Tag(tag(t)?)),
        (None, None, Some(and)) => {
            let tags = and.tags.iter().flatten().map(tag).collect::<S3Result<Vec<_>>>()?;
            if usize::from(and.prefix.is_some()) + tags.len() < 2 {
                return Err(malformed());
            }
            Ok(Filter::And { prefix: and.prefix.clone(), tags })
        }
        _ => Err(malformed()),
    }
}

fn destination(d: &dto::Destination) -> S3Result<Destination> {
    let bucket = d
        .bucket
        .strip_prefix("arn:aws:s3:::")
        .filter(|name| tern_core::names::is_valid_bucket_name(name))
        .ok_or_else(|| s3_error!(InvalidArgument, "Invalid bucket ARN: {}", d.bucket))?;
    let replication_time = d
        .replication_time
        .as_ref()
        .map(|t| Ok::<_, s3s::S3Error>((status(t.status.as_str())?, t.time.minutes)))
        .transpose()?;
    let metrics = d
        .metrics
        .as_ref()
        .map(|m| {
            Ok::<_, s3s::S3Error>((status(m.status.as_str())?, m.event_threshold.as_ref().and_then(|t| t.minutes)))
        })
        .transpose()?;
    if replication_time.is_some() != metrics.is_some() {
        return Err(invalid("Replication destination must contain both ReplicationTime and Metrics or neither."));
    }
    let fifteen = |minutes: Option<i32>| minutes.is_none_or(|m| m == 15);
    let replication_time_minutes = match replication_time {
        Some((true, minutes)) => {
            if !fifteen(minutes) {
                return Err(invalid("ReplicationTime Minutes must be 15."));
            }
            Some(15)
        }
        _ => None,
    };
    let metrics = match metrics {
        Some((true, threshold)) => {
            if !fifteen(threshold) {
                return Err(invalid("Metrics EventThreshold Minutes must be 15."));
            }
            Some(MetricsConfig { threshold_minutes: threshold })
        }
        _ => None,
    };
    Ok(Destination {
        bucket: bucket.to_owned(),
        account: d.account.clone(),
        storage_class: d.storage_class.as_ref().map(|c| c.as_str().to_owned()),
        replica_kms_key_id: d.encryption_configuration.as_ref().and_then(|e| e.replica_kms_key_id.clone()),
        replication_time_minutes,
        metrics,
    })
}

fn rule(r: &ReplicationRule, index: usize) -> S3Result<Rule> {
    let filter = filter(r)?;
    let v2 = !matches!(filter, Filter::Legacy(_));
    let delete_markers = match &r.delete_marker_replication {
        Some(d) => Some(status(d.status.as_ref().map_or("Disabled", |s| s.as_str()))?),
        None => None,
    };
    if v2 && r.priority.is_none() {
        return Err(invalid(
            "Priority must be specified for this version of Cross Region Replication configuration schema.",
        ));
    }
    if v2 && delete_markers.is_none() {
        return Err(invalid(
            "DeleteMarkerReplication must be specified for this version of Cross Region Replication configuration schema.",
        ));
    }
    if !v2 && (r.priority.is_some() || delete_markers.is_some()) {
        return Err(invalid(
            "Priority cannot be used for this version of Cross Region Replication configuration schema.",
        ));
    }
    if delete_markers == Some(true) && !filter.tags().is_empty() {
        return Err(invalid("Delete marker replication is not supported if any Tag filter is specified."));
    }
    let criteria = r.source_selection_criteria.as_ref();
    let sse_kms_objects =
        criteria.and_then(|c| c.sse_kms_encrypted_objects.as_ref()).map(|s| status(s.status.as_str())).transpose()?;
    let replica_modifications =
        criteria.and_then(|c| c.replica_modifications.as_ref()).map(|s| status(s.status.as_str())).transpose()?;
    let destination = destination(&r.destination)?;
    match (sse_kms_objects == Some(true), destination.replica_kms_key_id.is_some()) {
        (true, false) => {
            return Err(invalid("ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present."));
        }
        (false, true) => {
            return Err(invalid(
                "SseKmsEncryptedObjects must be specified if EncryptionConfiguration/ReplicaKmsKeyID is present.",
            ));
        }
        _ => {}
    }
    let id = match &r.id {
        Some(id) if id.chars().count() > 255 => return Err(s3_error!(InvalidArgument, "The ID is too long.")),
        Some(id) => id.clone(),
        None => format!("rule-{}", index + 1),
    };
    Ok(Rule {
        id,
        priority: r.priority,
        enabled: status(r.status.as_str())?,
        filter,
        delete_markers,
        existing_objects: r.existing_object_replication.as_ref().map(|e| status(e.status.as_str())).transpose()?,
        sse_kms_objects,
        replica_modifications,
        destination,
    })
}

/// Checks what concerns the rules together: unique ids, and unique
/// priorities among rules that share a destination.
fn check_rules(rules: &[Rule]) -> S3Result<()> {
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.id == b.id {
                return Err(s3_error!(InvalidArgument, "Rule Id must be unique. Found same ID for more than one rule"));
            }
            if a.priority.is_some() && a.priority == b.priority && a.destination.bucket == b.destination.bucket {
                return Err(invalid("Found overlapping rules with same priority"));
            }
        }
    }
    Ok(())
}

/// Parses and checks a configuration on its own (no lookups).
fn parse(config: &ReplicationConfiguration) -> S3Result<ReplicationConfig> {
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let rules = config.rules.iter().enumerate().map(|(i, r)| rule(r, i)).collect::<S3Result<Vec<_>>>()?;
    check_rules(&rules)?;
    Ok(ReplicationConfig { role: config.role.clone(), rules })
}

fn status_dto<T: From<String>>(on: bool) -> T {
    T::from(if on { "Enabled" } else { "Disabled" }.to_owned())
}

fn tag_dto(t: &TagPair) -> dto::Tag {
    dto::Tag { key: Some(t.key.clone()), value: Some(t.value.clone()) }
}

impl Rule {
    fn to_dto(&self) -> ReplicationRule {
        let (prefix, filter) = match &self.filter {
            Filter::Legacy(p) => (Some(p.clone()), None),
            Filter::All => (None, Some(dto::ReplicationRuleFilter::default())),
            Filter::Prefix(p) => {
                (None, Some(dto::ReplicationRuleFilter { prefix: Some(p.clone()), ..Default::default() }))
            }
            Filter::Tag(t) => (None, Some(dto::ReplicationRuleFilter { tag: Some(tag_dto(t)), ..Default::default() })),
            Filter::And { prefix, tags } => (
                None,
                Some(dto::ReplicationRuleFilter {
                    and: Some(dto::ReplicationRuleAndOperator {
                        prefix: prefix.clone(),
                        tags: Some(tags.iter().map(tag_dto).collect()),
                    }),
                    ..Default::default()
                }),
            ),
        };
        let criteria = (self.sse_kms_objects.is_some() || self.replica_modifications.is_some()).then(|| {
            dto::SourceSelectionCriteria {
                sse_kms_encrypted_objects: self
                    .sse_kms_objects
                    .map(|on| dto::SseKmsEncryptedObjects { status: status_dto(on) }),
                replica_modifications: self
                    .replica_modifications
                    .map(|on| dto::ReplicaModifications { status: status_dto(on) }),
            }
        });
        ReplicationRule {
            delete_marker_replication: self
                .delete_markers
                .map(|on| dto::DeleteMarkerReplication { status: Some(status_dto(on)) }),
            destination: self.destination.to_dto(),
            existing_object_replication: self
                .existing_objects
                .map(|on| dto::ExistingObjectReplication { status: status_dto(on) }),
            filter,
            id: Some(self.id.clone()),
            prefix,
            priority: self.priority,
            source_selection_criteria: criteria,
            status: status_dto(self.enabled),
        }
    }
}

impl Destination {
    fn to_dto(&self) -> dto::Destination {
        let fifteen = || dto::ReplicationTimeValue { minutes: Some(15) };
        dto::Destination {
            access_control_translation: None,
            account: self.account.clone(),
            bucket: format!("arn:aws:s3:::{}", self.bucket),
            encryption_configuration: self
                .replica_kms_key_id
                .clone()
                .map(|id| dto::EncryptionConfiguration { replica_kms_key_id: Some(id) }),
            metrics: self.metrics.map(|m| dto::Metrics {
                event_threshold: m
                    .threshold_minutes
                    .map(|minutes| dto::ReplicationTimeValue { minutes: Some(minutes) }),
                status: status_dto(true),
            }),
            replication_time: self
                .replication_time_minutes
                .map(|_| dto::ReplicationTime { status: status_dto(true), time: fifteen() }),
            storage_class: self.storage_class.clone().map(dto::StorageClass::from),
        }
    }
}

/// What rules look at in a version.
struct Candidate<'a> {
    key: &'a str,
    tags: &'a [(String, String)],
    attrs: &'a tern_store::ObjectAttrs,
    is_delete_marker: bool,
}

impl<'a> From<&'a NewVersion> for Candidate<'a> {
    fn from(v: &'a NewVersion) -> Self {
        Self { key: &v.key, tags: &v.tags, attrs: &v.attrs, is_delete_marker: v.is_delete_marker }
    }
}

impl<'a> From<&'a tern_store::VersionRecord> for Candidate<'a> {
    fn from(v: &'a tern_store::VersionRecord) -> Self {
        Self { key: &v.key, tags: &v.tags, attrs: &v.attrs, is_delete_marker: v.is_delete_marker }
    }
}

/// Whether `rule` covers version `v` (filters, delete markers, SSE-KMS opt-in).
fn covers(rule: &Rule, v: &Candidate<'_>) -> bool {
    let kind_ok = if v.is_delete_marker {
        rule.delete_markers.unwrap_or(true) && rule.filter.tags().is_empty()
    } else {
        v.attrs.encryption.as_deref() != Some("aws:kms") || rule.sse_kms_objects == Some(true)
    };
    rule.enabled && kind_ok && rule.filter.matches(v.key, v.tags)
}

/// One task per destination, from the highest-priority rule of `rules` there.
fn tasks_for<'r>(role: &str, rules: impl Iterator<Item = &'r Rule>) -> Vec<NewTask> {
    let mut chosen: Vec<&Rule> = Vec::new();
    for rule in rules {
        match chosen.iter_mut().find(|c| c.destination.bucket == rule.destination.bucket) {
            Some(current) if rule.priority > current.priority => *current = rule,
            Some(_) => {}
            None => chosen.push(rule),
        }
    }
    chosen
        .iter()
        .map(|r| NewTask {
            rule_id: r.id.clone(),
            destination: r.destination.bucket.clone(),
            role: role.to_owned(),
            replica_kms_key_id: r.destination.replica_kms_key_id.clone(),
        })
        .collect()
}

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
        let candidate = Candidate::from(&*version);
        version.replication = tasks_for(&config.role, config.rules.iter().filter(|r| covers(r, &candidate)));
        if !version.replication.is_empty() {
            version.attrs.replication_status = Some("PENDING".to_owned());
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
        version: &tern_store::VersionRecord,
        tags: &[(String, String)],
        origin: Option<&str>,
    ) -> S3Result<Vec<NewTask>> {
        let Some(config) = self.replication_config(&version.bucket).await? else { return Ok(Vec::new()) };
        let candidate = Candidate { tags, ..Candidate::from(version) };
        let applies = |r: &&Rule| {
            let goes_back = !version.attrs.replica || r.replica_modifications == Some(true) && covers(r, &candidate);
            r.enabled && goes_back && Some(r.destination.bucket.as_str()) != origin
        };
        Ok(tasks_for(&config.role, config.rules.iter().filter(applies)))
    }

    /// The bucket's replication configuration, if it has one.
    pub(crate) async fn replication_config(&self, bucket: &str) -> S3Result<Option<ReplicationConfig>> {
        let stored = self.meta.get_bucket_config(bucket, REPLICATION_CONFIG).await.map_err(store_error)?;
        stored.map(|text| serde_json::from_str(&text).map_err(internal)).transpose()
    }

    pub(crate) async fn put_bucket_replication(
        &self,
        bucket: &str,
        config: &ReplicationConfiguration,
        caller: &Principal,
    ) -> S3Result<()> {
        let source = self.bucket(bucket).await?;
        if source.versioning != Versioning::Enabled {
            return Err(invalid("Versioning must be 'Enabled' on the bucket to apply a replication configuration"));
        }
        let config = parse(config)?;
        self.check_role(&config.role, caller).await?;
        for rule in &config.rules {
            self.check_destination(&rule.destination.bucket).await?;
        }
        let text = serde_json::to_string(&config).map_err(internal)?;
        self.meta.put_bucket_config(bucket, REPLICATION_CONFIG, Some(&text)).await.map_err(store_error)?;
        self.backfill(bucket, &config).await
    }

    /// `ExistingObjectReplication`: gives the objects already in the bucket
    /// the tasks their rules would have given them (destinations a version
    /// already has a task for are skipped, so putting a configuration again
    /// replicates nothing twice). Replicas and delete markers are left alone.
    async fn backfill(&self, bucket: &str, config: &ReplicationConfig) -> S3Result<()> {
        let rules: Vec<&Rule> = config.rules.iter().filter(|r| r.existing_objects == Some(true)).collect();
        if rules.is_empty() {
            return Ok(());
        }
        let mut start = tern_store::KeyStart::Beginning;
        loop {
            let page = self.meta.list_versions(bucket, "", &start, 1000).await.map_err(store_error)?;
            for summary in page.iter().filter(|s| !s.is_delete_marker) {
                let found = self.meta.get_version(bucket, &summary.key, Some(&summary.version_id)).await;
                let Some(version) = found.map_err(store_error)? else { continue };
                if version.attrs.replica {
                    continue;
                }
                let candidate = Candidate::from(&version);
                let tasks = tasks_for(&config.role, rules.iter().copied().filter(|r| covers(r, &candidate)));
                self.meta.add_tasks(bucket, &version.key, &version.version_id, &tasks).await.map_err(store_error)?;
            }
            let Some(last) = page.last() else { break };
            start = tern_store::KeyStart::AfterVersion { key: last.key.clone(), version_id: last.version_id.clone() };
            self.replication_wake.notify_one();
        }
        Ok(())
    }

    /// The role must parse, exist, and be passable by the caller (`iam:PassRole`).
    async fn check_role(&self, role: &str, caller: &Principal) -> S3Result<()> {
        role.strip_prefix(&format!("arn:aws:iam::{}:role/", self.account_id)).filter(|n| !n.is_empty()).ok_or_else(
            || s3_error!(InvalidArgument, "Invalid ArgumentRole: {role} is not a role ARN of this account"),
        )?;
        if !self.iam.principals_exist_current(&[role]).await {
            return Err(s3_error!(InvalidArgument, "The role {role} does not exist"));
        }
        self.authorize(caller, "iam:PassRole", role).await
    }

    /// The destination bucket must exist (in any region) and be versioned.
    async fn check_destination(&self, bucket: &str) -> S3Result<()> {
        let region = self.registry.lookup(bucket).await.map_err(|e| registry_error(&e))?;
        let versioning = match region {
            None => None,
            Some(region) if region == self.name => {
                self.meta.get_bucket(bucket).await.map_err(store_error)?.map(|b| b.versioning)
            }
            Some(region) => self.peers.versioning(&region, bucket).await.map_err(|e| registry_error(&e))?,
        };
        match versioning {
            None => Err(invalid("Destination bucket must exist.")),
            Some(Versioning::Enabled) => Ok(()),
            Some(_) => Err(invalid("Destination bucket must have versioning enabled.")),
        }
    }

    pub(crate) async fn get_bucket_replication(&self, bucket: &str) -> S3Result<ReplicationConfiguration> {
        self.bucket(bucket).await?;
        let config = self.replication_config(bucket).await?.ok_or_else(|| {
            s3_error!(ReplicationConfigurationNotFoundError, "The replication configuration was not found")
        })?;
        Ok(ReplicationConfiguration { role: config.role, rules: config.rules.iter().map(Rule::to_dto).collect() })
    }

    pub(crate) async fn delete_bucket_replication(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        self.meta.put_bucket_config(bucket, REPLICATION_CONFIG, None).await.map_err(store_error)
    }
}

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
        self.bucket(bucket).await?;
        let config = self.replication_config(bucket).await?.ok_or_else(|| {
            s3_error!(ReplicationConfigurationNotFoundError, "The replication configuration was not found")
        })?;
        let role = config.role.clone();
        let principal = Principal {
            arn: role.clone(),
            account: self.account_id.clone(),
            session_arn: Some(format!(
                "arn:aws:sts::{}:assumed-role/{}/s3-replication",
                self.account_id,
                role.rsplit('/').next().unwrap_or_default()
            )),
            service: None,
            assumed_by_service: Some(tern_iam::policy::S3_SERVICE.to_owned()),
        };
        let mut checks = Vec::new();
        for rule in &config.rules {
            let mut problems = Vec::new();
            if let Err(why) = self.iam.trusts_service(&role, "s3.amazonaws.com") {
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
        let mut allowed = |action: &str, resource: String| {
            let context = RequestContext::of(acting);
            let request = Request { principal: acting, action, resource: &resource, context: &context };
            if self.iam.authorize(&request).is_err() {
                problems.push(format!("{} needs {action} on {resource} (its identity policies)", acting.arn));
            }
        };
        allowed("s3:GetObjectVersionForReplication", format!("arn:aws:s3:::{bucket}/{prefix}*"));
        allowed("s3:ReplicateObject", format!("arn:aws:s3:::{destination}/{prefix}*"));
        if rule.delete_markers != Some(false) {
            allowed("s3:ReplicateDelete", format!("arn:aws:s3:::{destination}/{prefix}*"));
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
        let caller = tern_kms::Caller::new(acting.clone()).via(format!("s3.{}.amazonaws.com", self.name));
        if let Ok(Some(default)) = self.bucket_encryption(bucket).await
            && let Some(key) = default.kms_key_id.filter(|_| default.algorithm == "aws:kms")
            && let Err(e) = self.sse.kms.check(&caller, "Decrypt", &key, &BTreeMap::new())
        {
            problems.push(format!("source key {key} in {}: {}: {}", self.name, e.code, e.message));
        }
        let Some(key) = &rule.destination.replica_kms_key_id else { return };
        let Ok(Some(region)) = self.registry.lookup(&rule.destination.bucket).await else { return };
        let via = format!("s3.{region}.amazonaws.com");
        let refusal = if region == self.name {
            let caller = tern_kms::Caller::new(acting.clone()).via(via);
            self.sse
                .kms
                .check(&caller, "GenerateDataKey", key, &BTreeMap::new())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_dto(id: &str, priority: Option<i32>, filter: Option<dto::ReplicationRuleFilter>) -> ReplicationRule {
        ReplicationRule {
            delete_marker_replication: priority
                .map(|_| dto::DeleteMarkerReplication { status: Some(status_dto(false)) }),
            destination: dto::Destination { bucket: "arn:aws:s3:::dst".into(), ..Default::default() },
            existing_object_replication: None,
            filter,
            id: Some(id.into()),
            prefix: None,
            priority,
            source_selection_criteria: None,
            status: status_dto(true),
        }
    }

    fn config(rules: Vec<ReplicationRule>) -> ReplicationConfiguration {
        ReplicationConfiguration { role: "arn:aws:iam::000000000000:role/r".into(), rules }
    }

    fn code(result: S3Result<ReplicationConfig>) -> String {
        result.err().map(|e| e.code().as_str().to_owned()).unwrap_or_default()
    }

    #[test]
    fn documents_round_trip_in_the_form_they_were_written() {
        let prefix = dto::ReplicationRuleFilter { prefix: Some("docs/".into()), ..Default::default() };
        let put = config(vec![
            rule_dto("a", Some(1), Some(prefix)),
            rule_dto("b", Some(2), Some(dto::ReplicationRuleFilter::default())),
        ]);
        let parsed = parse(&put).unwrap();
        let again = ReplicationConfiguration {
            role: parsed.role.clone(),
            rules: parsed.rules.iter().map(Rule::to_dto).collect(),
        };
        assert_eq!(parse(&again).unwrap(), parsed);
        assert_eq!(parsed.rules[0].filter, Filter::Prefix("docs/".into()));
        assert!(parsed.rules[0].filter.matches("docs/x", &[]) && !parsed.rules[0].filter.matches("img/x", &[]));
    }

    #[test]
    fn invalid_documents_get_aws_codes() {
        assert_eq!(
            code(parse(&config(vec![rule_dto("a", None, Some(dto::ReplicationRuleFilter::default()))]))),
            "InvalidRequest"
        );
        let both = dto::ReplicationRuleFilter {
            prefix: Some("p".into()),
            tag: Some(dto::Tag { key: Some("k".into()), value: Some("v".into()) }),
            ..Default::default()
        };
        assert_eq!(code(parse(&config(vec![rule_dto("a", Some(1), Some(both))]))), "MalformedXML");
        let lonely_and = dto::ReplicationRuleFilter {
            and: Some(dto::ReplicationRuleAndOperator { prefix: Some("p".into()), tags: None }),
            ..Default::default()
        };
        assert_eq!(code(parse(&config(vec![rule_dto("a", Some(1), Some(lonely_and))]))), "MalformedXML");
        let twins = vec![
            rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default())),
            rule_dto("b", Some(1), Some(dto::ReplicationRuleFilter::default())),
        ];
        assert_eq!(code(parse(&config(twins))), "InvalidRequest");
        let same_id = vec![
            rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default())),
            rule_dto("a", Some(2), Some(dto::ReplicationRuleFilter::default())),
        ];
        assert_eq!(code(parse(&config(same_id))), "InvalidArgument");
        let mut kms = rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default()));
        kms.source_selection_criteria = Some(dto::SourceSelectionCriteria {
            sse_kms_encrypted_objects: Some(dto::SseKmsEncryptedObjects { status: status_dto(true) }),
            replica_modifications: None,
        });
        assert_eq!(code(parse(&config(vec![kms]))), "InvalidRequest", "SseKmsEncryptedObjects needs ReplicaKmsKeyID");
        let mut bad_arn = rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default()));
        bad_arn.destination.bucket = "dst".into();
        assert_eq!(code(parse(&config(vec![bad_arn]))), "InvalidArgument");
        assert_eq!(code(parse(&config(vec![]))), "MalformedXML");
    }
}
