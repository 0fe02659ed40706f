//! Key lifecycle: CreateKey, DescribeKey, ListKeys, Enable/DisableKey,
//! deletion scheduling, descriptions and tags.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tern_crypto::Key256;

use crate::error::{KmsError, KmsResult};
use crate::ids::new_key_id;
use crate::model::{KeyRecord, KeyState, MultiRegion, Shared, Tag};
use crate::ops::{page, policy};
use crate::store::LiveKey;
use crate::wire::{DAY, now, required};
use crate::{Caller, Kms};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKeyRequest {
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
    tags: Option<Vec<Tag>>,
    multi_region: Option<bool>,
}

/// The request shape of every call that names only a key.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyRequest {
    pub key_id: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
}

fn only(field: &str, given: Option<&str>, supported: &str) -> KmsResult<()> {
    match given {
        Some(v) if v != supported => {
            Err(KmsError::unsupported(format!("{field} {v} is not supported by Tern; only {supported} is.")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn validate_description(description: &str) -> KmsResult<()> {
    if description.chars().count() > 8192 {
        return Err(KmsError::constraint("description", "…", "Member must have length less than or equal to 8192"));
    }
    Ok(())
}

pub(crate) fn validate_tags(tags: &[Tag]) -> KmsResult<()> {
    for tag in tags {
        if tag.tag_key.is_empty() || tag.tag_key.chars().count() > 128 || tag.tag_value.chars().count() > 256 {
            return Err(KmsError::tag(format!("Tag {}: keys take 1-128 characters, values 0-256.", tag.tag_key)));
        }
        if tag.tag_key.starts_with("aws:") {
            return Err(KmsError::tag("Tags beginning with aws: are reserved"));
        }
    }
    Ok(())
}

/// A fresh key record of this region with one version of new material.
pub(crate) fn new_key(
    kms: &Kms,
    id: String,
    policy: String,
    description: String,
    shared: Shared,
) -> KmsResult<LiveKey> {
    let record = KeyRecord {
        id,
        created: now(),
        description,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        policy,
        tags: Vec::new(),
        grants: Vec::new(),
        managed: false,
        materials: Vec::new(),
        shared,
    };
    let mut key = LiveKey::new(record, std::collections::BTreeMap::new());
    let material = Key256::random().map_err(|e| KmsError::internal(e.to_string()))?;
    kms.store.add_material(&mut key, 1, material)?;
    Ok(key)
}

pub(crate) async fn create_key(kms: &Kms, caller: &Caller, req: CreateKeyRequest) -> KmsResult<Value> {
    kms.authorize_account(caller, "CreateKey")?;
    only("KeyUsage", req.key_usage.as_deref(), "ENCRYPT_DECRYPT")?;
    only("KeySpec", req.key_spec.as_deref().or(req.customer_master_key_spec.as_deref()), "SYMMETRIC_DEFAULT")?;
    only("Origin", req.origin.as_deref(), "AWS_KMS")?;
    let description = req.description.unwrap_or_default();
    validate_description(&description)?;
    let tags = req.tags.unwrap_or_default();
    validate_tags(&tags)?;
    let multi_region = req.multi_region.unwrap_or(false);
    let id = new_key_id(multi_region);
    let bypass = req.bypass_policy_lockout_safety_check;
    let policy = policy::checked_or_default(kms, caller, req.policy, bypass, &id).await?;
    let shared = Shared {
        generation: 1,
        multi_region: multi_region
            .then(|| MultiRegion { primary_region: kms.region.clone(), replica_regions: Vec::new() }),
        ..Shared::default()
    };
    let mut key = new_key(kms, id, policy, description, shared)?;
    key.record.tags = tags;
    let key = kms.store.insert(key, None).await?;
    Ok(json!({ "KeyMetadata": kms.metadata(&key.record) }))
}

pub(crate) fn describe_key(kms: &Kms, caller: &Caller, req: KeyRequest) -> KmsResult<Value> {
    let key = kms.resolve(&required(req.key_id, "keyId")?)?;
    kms.authorize(caller, "DescribeKey", &key)?;
    Ok(json!({ "KeyMetadata": kms.metadata(&key.record) }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRequest {
    pub key_id: Option<String>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

pub(crate) fn list_keys(kms: &Kms, caller: &Caller, req: &ListRequest) -> KmsResult<Value> {
    kms.authorize_account(caller, "ListKeys")?;
    let mut out = serde_json::Map::new();
    let keys = page(kms.store.keys(), |k| &k.record.id, req.marker.as_deref(), req.limit, &mut out)?;
    let keys: Vec<Value> =
        keys.iter().map(|k| json!({"KeyId": k.record.id, "KeyArn": kms.arn(&k.record.id)})).collect();
    out.insert("Keys".into(), Value::Array(keys));
    Ok(Value::Object(out))
}

/// The error a management call gets on a key pending deletion.
pub(crate) fn refuse_if_pending_deletion(kms: &Kms, key: &KeyRecord) -> KmsResult<()> {
    if key.state.is_pending_deletion() {
        return Err(KmsError::invalid_state(format!("{} is pending deletion.", kms.arn(&key.id))));
    }
    Ok(())
}

/// The key of a management call (key id or ARN), once `caller` may perform
/// `kms:<action>` on it.
pub(crate) fn managed(kms: &Kms, caller: &Caller, key_id: Option<String>, action: &str) -> KmsResult<Arc<LiveKey>> {
    let key = kms.resolve_key_only(&required(key_id, "keyId")?)?;
    kms.authorize(caller, action, &key)?;
    Ok(key)
}

/// Applies `change` to key `id` unless it is pending deletion; answers `{}`.
pub(crate) async fn change_record(
    kms: &Kms,
    id: &str,
    change: impl FnOnce(&mut KeyRecord) -> KmsResult<()>,
) -> KmsResult<Value> {
    kms.store
        .update(id, |key| {
            refuse_if_pending_deletion(kms, &key.record)?;
            change(&mut key.record)
        })
        .await?;
    Ok(json!({}))
}

pub(crate) async fn set_enabled(kms: &Kms, caller: &Caller, req: KeyRequest, enabled: bool) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, if enabled { "EnableKey" } else { "DisableKey" })?;
    change_record(kms, &key.record.id, |record| {
        record.state = if enabled { KeyState::Enabled } else { KeyState::Disabled };
        Ok(())
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScheduleDeletionRequest {
    key_id: Option<String>,
    pending_window_in_days: Option<i64>,
}

pub(crate) async fn schedule_deletion(kms: &Kms, caller: &Caller, req: ScheduleDeletionRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "ScheduleKeyDeletion")?;
    let days = req.pending_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(KmsError::constraint(
            "pendingWindowInDays",
            &days.to_string(),
            "Member must have value between 7 and 30",
        ));
    }
    let days = u32::try_from(days).expect("7..=30");
    let record = kms
        .store
        .update(&key.record.id, |key| {
            refuse_if_pending_deletion(kms, &key.record)?;
            let waits_for_replicas = key
                .record
                .shared
                .multi_region
                .as_ref()
                .is_some_and(|mr| mr.primary_region == kms.region && !mr.replica_regions.is_empty());
            key.record.pending_window_days = Some(days);
            if waits_for_replicas {
                key.record.state = KeyState::PendingReplicaDeletion;
            } else {
                key.record.state = KeyState::PendingDeletion;
                key.record.deletion_date = Some(now() + f64::from(days) * DAY);
            }
            Ok(key.record.clone())
        })
        .await?;
    let mut out = json!({
        "KeyId": kms.arn(&record.id),
        "KeyState": record.state.as_str(),
        "PendingWindowInDays": days,
    });
    if let Some(date) = record.deletion_date {
        out["DeletionDate"] = json!(date);
    }
    Ok(out)
}

pub(crate) async fn cancel_deletion(kms: &Kms, caller: &Caller, req: KeyRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "CancelKeyDeletion")?;
    kms.store
        .update(&key.record.id, |key| {
            if !key.record.state.is_pending_deletion() {
                return Err(KmsError::invalid_state(format!("{} is not pending deletion.", kms.arn(&key.record.id))));
            }
            key.record.state = KeyState::Disabled;
            key.record.deletion_date = None;
            key.record.pending_window_days = None;
            Ok(())
        })
        .await?;
    Ok(json!({ "KeyId": kms.arn(&key.record.id) }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescriptionRequest {
    key_id: Option<String>,
    description: Option<String>,
}

pub(crate) async fn update_description(kms: &Kms, caller: &Caller, req: DescriptionRequest) -> KmsResult<Value> {
    let description = required(req.description, "description")?;
    validate_description(&description)?;
    let key = managed(kms, caller, req.key_id, "UpdateKeyDescription")?;
    change_record(kms, &key.record.id, |record| {
        record.description = description;
        Ok(())
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagRequest {
    key_id: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
}

pub(crate) async fn tag_resource(kms: &Kms, caller: &Caller, req: TagRequest) -> KmsResult<Value> {
    let tags = required(req.tags, "tags")?;
    validate_tags(&tags)?;
    let key = managed(kms, caller, req.key_id, "TagResource")?;
    change_record(kms, &key.record.id, |record| {
        for tag in tags {
            record.tags.retain(|t| t.tag_key != tag.tag_key);
            record.tags.push(tag);
        }
        if record.tags.len() > 50 {
            return Err(KmsError::tag("A key can have at most 50 tags."));
        }
        Ok(())
    })
    .await
}

pub(crate) async fn untag_resource(kms: &Kms, caller: &Caller, req: TagRequest) -> KmsResult<Value> {
    let keys = required(req.tag_keys, "tagKeys")?;
    let key = managed(kms, caller, req.key_id, "UntagResource")?;
    change_record(kms, &key.record.id, |record| {
        record.tags.retain(|t| !keys.contains(&t.tag_key));
        Ok(())
    })
    .await
}

pub(crate) fn list_resource_tags(kms: &Kms, caller: &Caller, req: ListRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "ListResourceTags")?;
    let mut out = serde_json::Map::new();
    let mut tags = key.record.tags.clone();
    tags.sort_by(|a, b| a.tag_key.cmp(&b.tag_key));
    let tags = page(tags, |t| &t.tag_key, req.marker.as_deref(), req.limit, &mut out)?;
    out.insert("Tags".into(), serde_json::to_value(tags).map_err(|e| KmsError::internal(e.to_string()))?);
    Ok(Value::Object(out))
}

impl Kms {
    /// The id of the AWS managed key of `service` (`alias/aws/<service>`,
    /// e.g. `aws/s3`), created on first use as AWS does.
    pub async fn managed_key(&self, service: &str) -> KmsResult<String> {
        let alias = format!("alias/aws/{service}");
        let _creating = self.managed.lock().await;
        for _ in 0..crate::STALE_ATTEMPTS {
            if let Some(existing) = self.store.alias(&alias) {
                return Ok(existing.target);
            }
            // The key and its alias are stored together: a front-end that
            // loses the race to create them stores neither and finds the
            // winner's on its next look.
            match self.create_managed_key(service, &alias).await {
                Err(e) if e.is_stale() => {}
                other => return other,
            }
        }
        Err(KmsError::stale())
    }

    async fn create_managed_key(&self, service: &str, alias: &str) -> KmsResult<String> {
        let policy = policy::managed_policy(&self.account, &format!("{service}.{}.amazonaws.com", self.region));
        let description =
            format!("Default key that protects my {} data when no other key is defined", service.to_uppercase());
        let mut key =
            new_key(self, new_key_id(false), policy, description, Shared { generation: 1, ..Shared::default() })?;
        key.record.managed = true;
        let id = key.record.id.clone();
        let at = now();
        let name = alias.to_owned();
        let named = crate::model::AliasRecord { name, target: id.clone(), created: at, updated: at };
        self.store.insert(key, Some(named)).await?;
        Ok(id)
    }
}
