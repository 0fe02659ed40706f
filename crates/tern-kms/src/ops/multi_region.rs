//! Multi-region keys across regions: ReplicateKey, UpdatePrimaryRegion, and
//! Tern's internal operations that carry an MRK's shared state (primary,
//! replicas, rotation, material) from the primary to its replicas.
//!
//! The primary owns the shared state and pushes it whole, with a growing
//! generation, so a replica applies each push at most once and never goes
//! back. Material travels sealed to the receiving region's transport key
//! ([`tern_crypto::transport`]); the receiver re-seals it under its own
//! key-store key. A push that fails is retried by [`Kms::maintain`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tern_crypto::Key256;
use tern_crypto::transport::{self, PUBLIC_KEY_LEN};

use crate::error::{KmsError, KmsResult};
use crate::model::{KeyState, MultiRegion, Shared, Tag};
use crate::ops::keys::{new_key, validate_description, validate_tags};
use crate::ops::policy;
use crate::store::LiveKey;
use crate::wire::{DAY, b64, base64_bytes, now, parse, required};
use crate::{Caller, Kms};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireMaterial {
    version: u32,
    #[serde(with = "base64_bytes")]
    sealed: Vec<u8>,
}

/// What a new replica starts with; everything else is per region.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReplicaStart {
    description: String,
    policy: Option<String>,
    tags: Vec<Tag>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SyncKey {
    key_id: String,
    shared: Shared,
    materials: Vec<WireMaterial>,
    create: Option<ReplicaStart>,
    /// The pushing region, and the challenge the receiver issued for this push.
    sender: String,
    challenge: String,
}

/// What one sealed material is bound to: its key and version, both
/// regions, and the receiver's one-time challenge.
fn transport_context(key_id: &str, version: u32, (sender, receiver): (&str, &str), challenge: &str) -> Vec<u8> {
    format!("kms material v2|{key_id}|{version}|{sender}|{receiver}|{challenge}").into_bytes()
}

/// A peer's transport key and a challenge it issued for one push.
struct Handshake {
    public_key: [u8; PUBLIC_KEY_LEN],
    challenge: String,
}

impl Kms {
    async fn handshake(&self, region: &str) -> KmsResult<Handshake> {
        let malformed = || KmsError::internal(format!("{region} sent a malformed transport handshake"));
        let answer = self.peers.call(region, "GetTransportKey", json!({})).await?;
        let text = answer["PublicKey"].as_str().unwrap_or_default();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).map_err(|_| malformed())?;
        let challenge = answer["Challenge"].as_str().ok_or_else(malformed)?.to_owned();
        Ok(Handshake { public_key: bytes.try_into().map_err(|_| malformed())?, challenge })
    }

    /// Sends `key`'s shared state and material to `region`. The receiver's
    /// public key comes from an answer nobody signs, but the material is
    /// sealed under the deployment's peer secret as well: a substituted key
    /// gets its holder nothing.
    async fn push(&self, key: &LiveKey, region: &str, create: Option<ReplicaStart>) -> KmsResult<Value> {
        let Handshake { public_key, challenge } = self.handshake(region).await?;
        let materials = key
            .materials
            .iter()
            .map(|(version, material)| {
                let context = transport_context(&key.record.id, *version, (&self.region, region), &challenge);
                let sealed = transport::seal_to(&public_key, &self.peer_secret, &context, material.expose())
                    .map_err(|e| KmsError::internal(e.to_string()))?;
                Ok(WireMaterial { version: *version, sealed })
            })
            .collect::<KmsResult<Vec<_>>>()?;
        let message = SyncKey {
            key_id: key.record.id.clone(),
            shared: key.record.shared.clone(),
            materials,
            create,
            sender: self.region.clone(),
            challenge,
        };
        let body = serde_json::to_value(message).map_err(|e| KmsError::internal(e.to_string()))?;
        self.peers.call(region, "SyncKey", body).await
    }

    /// Pushes `key` to each of its other regions; a failure is remembered
    /// and retried by the maintenance loop, not returned.
    pub(crate) async fn push_all(&self, key: &LiveKey) {
        let Some(mr) = &key.record.shared.multi_region else { return };
        let regions = std::iter::once(&mr.primary_region).chain(&mr.replica_regions).filter(|r| **r != self.region);
        for region in regions {
            if let Err(e) = self.push(key, region, None).await {
                tracing::warn!(key = %key.record.id, %region, error = %e, "MRK update not delivered; will retry");
                self.stale.lock().expect("stale set lock").insert((key.record.id.clone(), region.clone()));
            }
        }
    }

    /// Re-sends every push that failed before.
    pub(crate) async fn retry_pushes(&self) {
        let pending: Vec<(String, String)> =
            std::mem::take(&mut *self.stale.lock().expect("stale set lock")).into_iter().collect();
        for (id, region) in pending {
            let Some(key) = self.store.key(&id) else { continue };
            if let Err(e) = self.push(&key, &region, None).await {
                tracing::debug!(key = %id, %region, error = %e, "MRK update still not delivered");
                self.stale.lock().expect("stale set lock").insert((id, region));
            }
        }
    }

    /// Changes a key's shared state here (generation + 1), then brings
    /// every replica up to date.
    pub(crate) async fn change_shared(
        &self,
        id: &str,
        change: impl FnOnce(&mut LiveKey) -> KmsResult<()>,
    ) -> KmsResult<Arc<LiveKey>> {
        self.store
            .update(id, |key| {
                change(key)?;
                key.record.shared.generation += 1;
                Ok(())
            })
            .await?;
        let key = self.key_or_not_found(id)?;
        self.push_all(&key).await;
        Ok(key)
    }

    /// The MRK primary `key` in this region, ready for a cross-region change.
    fn primary_here(&self, key: &LiveKey) -> KmsResult<MultiRegion> {
        let arn = self.arn(&key.record.id);
        let mr = key
            .record
            .shared
            .multi_region
            .clone()
            .ok_or_else(|| KmsError::unsupported(format!("{arn} is not a multi-Region key.")))?;
        if mr.primary_region != self.region {
            return Err(KmsError::unsupported(format!("{arn} is not a multi-Region primary key.")));
        }
        match key.record.state {
            KeyState::Disabled => Err(KmsError::disabled(&arn)),
            state if state.is_pending_deletion() => Err(KmsError::invalid_state(format!("{arn} is pending deletion."))),
            _ => Ok(mr),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReplicateKeyRequest {
    key_id: Option<String>,
    replica_region: Option<String>,
    policy: Option<String>,
    description: Option<String>,
    tags: Option<Vec<Tag>>,
}

fn check_region_name(field: &str, region: &str) -> KmsResult<()> {
    if tern_core::names::is_valid_region_name(region) {
        return Ok(());
    }
    Err(KmsError::constraint(field, region, "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"))
}

pub(crate) async fn replicate_key(kms: &Kms, caller: &Caller, req: ReplicateKeyRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    let region = required(req.replica_region, "replicaRegion")?;
    check_region_name("replicaRegion", &region)?;
    kms.authorize(caller, "ReplicateKey", &key)?;
    let mut mr = kms.primary_here(&key)?;
    if region == kms.region || mr.replica_regions.contains(&region) {
        return Err(KmsError::already_exists(format!(
            "Multi-Region key {} already has a key in {region}.",
            kms.arn(&key.record.id)
        )));
    }
    if !kms.peers.knows(&region) {
        return Err(KmsError::unsupported(format!("Region {region} is not part of this Tern deployment.")));
    }
    if let Some(text) = &req.policy {
        policy::validate(kms, text).await?;
    }
    let start = ReplicaStart {
        description: req.description.unwrap_or_default(),
        policy: req.policy,
        tags: req.tags.unwrap_or_default(),
    };
    validate_description(&start.description)?;
    validate_tags(&start.tags)?;
    mr.replica_regions.push(region.clone());
    let mut updated = LiveKey::clone(&key);
    updated.record.shared.multi_region = Some(mr.clone());
    updated.record.shared.generation += 1;
    let replica = kms.push(&updated, &region, Some(start)).await?;
    kms.change_shared(&key.record.id, |key| {
        key.record.shared.multi_region = Some(mr);
        Ok(())
    })
    .await?;
    Ok(json!({
        "ReplicaKeyMetadata": replica["KeyMetadata"],
        "ReplicaPolicy": replica["Policy"],
        "ReplicaTags": replica["Tags"],
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdatePrimaryRequest {
    key_id: Option<String>,
    primary_region: Option<String>,
}

pub(crate) async fn update_primary_region(kms: &Kms, caller: &Caller, req: UpdatePrimaryRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    let region = required(req.primary_region, "primaryRegion")?;
    check_region_name("primaryRegion", &region)?;
    kms.authorize(caller, "UpdatePrimaryRegion", &key)?;
    let mut mr = kms.primary_here(&key)?;
    if region == kms.region {
        return Ok(json!({}));
    }
    if !mr.replica_regions.contains(&region) {
        return Err(KmsError::not_found(format!(
            "Key '{}' does not exist",
            crate::ids::key_arn(&region, &kms.account, &key.record.id)
        )));
    }
    mr.replica_regions.retain(|r| *r != region);
    mr.replica_regions.push(kms.region.clone());
    mr.primary_region = region.clone();
    // The new primary must learn first: until it does, this region stays primary.
    let mut updated = LiveKey::clone(&key);
    updated.record.shared.multi_region = Some(mr.clone());
    updated.record.shared.generation += 1;
    kms.push(&updated, &region, None).await?;
    kms.change_shared(&key.record.id, |key| {
        key.record.shared.multi_region = Some(mr);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

/// Tern's internal operations; the caller has authenticated the request as
/// the deployment's root.
pub(crate) async fn internal(kms: &Kms, operation: &str, body: &[u8]) -> KmsResult<Value> {
    match operation {
        "GetTransportKey" => {
            let challenge = kms
                .challenges
                .issue()
                .ok_or_else(|| KmsError::internal("Too many key transfers are waiting; retry shortly."))?;
            Ok(json!({ "PublicKey": b64(&kms.transport.public()), "Challenge": challenge }))
        }
        "SyncKey" => apply_sync(kms, parse(body)?).await,
        "ReplicaDeleted" => replica_deleted(kms, parse(body)?).await,
        "CheckAccess" => check_access(kms, parse(body)?),
        _ => Err(KmsError::unknown_operation(operation)),
    }
}

/// Opens the materials of a push, which must answer a challenge this region
/// issued and not yet saw answered.
fn open_materials(kms: &Kms, message: &SyncKey) -> KmsResult<Vec<(u32, Key256)>> {
    if !kms.challenges.redeem(&message.challenge) {
        return Err(KmsError::validation("The key transfer does not answer a challenge of this region."));
    }
    let regions = (message.sender.as_str(), kms.region.as_str());
    message
        .materials
        .iter()
        .map(|m| {
            let context = transport_context(&message.key_id, m.version, regions, &message.challenge);
            let plain = zeroize::Zeroizing::new(
                kms.transport
                    .open(&kms.peer_secret, &context, &m.sealed)
                    .map_err(|_| KmsError::validation("Key material did not open: not sealed by this deployment."))?,
            );
            let key =
                Key256::from_slice(&plain).ok_or_else(|| KmsError::validation("Key material has a bad length."))?;
            Ok((m.version, key))
        })
        .collect()
}

/// Applies a primary's push: creates the replica, or updates its shared
/// state if the push is newer than what this region has.
async fn apply_sync(kms: &Kms, message: SyncKey) -> KmsResult<Value> {
    let mr = message.shared.multi_region.as_ref().ok_or_else(|| KmsError::validation("Not a multi-Region key."))?;
    if mr.primary_region != kms.region && !mr.replica_regions.contains(&kms.region) {
        return Err(KmsError::validation(format!("The key has no replica in {}.", kms.region)));
    }
    let materials = open_materials(kms, &message)?;
    let id = message.key_id.clone();
    if kms.store.key(&id).is_none() {
        let start =
            message.create.ok_or_else(|| KmsError::not_found(format!("Key '{}' does not exist", kms.arn(&id))))?;
        let policy = start.policy.unwrap_or_else(|| policy::default_policy(&kms.account));
        let mut key = new_key(kms, id.clone(), policy, start.description, message.shared)?;
        key.record.tags = start.tags;
        key.record.materials.clear();
        key.materials.clear();
        for (version, material) in materials {
            kms.store.add_material(&mut key, version, material)?;
        }
        kms.store.insert(key, None).await?;
    } else {
        kms.store
            .update(&id, |key| {
                if message.shared.generation <= key.record.shared.generation {
                    return Ok(());
                }
                key.record.shared = message.shared;
                for (version, material) in materials {
                    if !key.materials.contains_key(&version) {
                        kms.store.add_material(key, version, material)?;
                    }
                }
                Ok(())
            })
            .await?;
    }
    let key = kms.key_or_not_found(&id)?;
    Ok(json!({
        "KeyMetadata": kms.metadata(&key.record),
        "Policy": key.record.policy,
        "Tags": key.record.tags,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckAccess {
    principal_arn: String,
    session_arn: Option<String>,
    action: String,
    key_id: String,
    via_service: String,
}

/// Whether a principal of this account may perform a KMS action on a key
/// here, through a service (`tern replication check` asks it of the
/// destination region); nothing cryptographic happens.
fn check_access(kms: &Kms, request: CheckAccess) -> KmsResult<Value> {
    let principal = tern_iam::policy::Principal {
        session_arn: request.session_arn,
        ..tern_iam::policy::Principal::of_arn(&kms.account, request.principal_arn)
    };
    let caller = Caller::new(principal).via(request.via_service);
    let (_, arn) = kms.may_use(&caller, &request.action, &request.key_id, &std::collections::BTreeMap::new())?;
    Ok(json!({ "KeyArn": arn }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicaDeleted {
    key_id: String,
    region: String,
}

/// A replica's deletion has completed: the primary forgets it, and a primary
/// waiting for its last replica starts its own deletion window.
async fn replica_deleted(kms: &Kms, message: ReplicaDeleted) -> KmsResult<Value> {
    let Some(key) = kms.store.key(&message.key_id) else { return Ok(json!({})) };
    let listed = key.record.shared.multi_region.as_ref().is_some_and(|mr| mr.replica_regions.contains(&message.region));
    if !listed {
        return Ok(json!({}));
    }
    kms.change_shared(&message.key_id, |key| {
        if let Some(mr) = &mut key.record.shared.multi_region {
            mr.replica_regions.retain(|r| *r != message.region);
            if mr.replica_regions.is_empty() && key.record.state == KeyState::PendingReplicaDeletion {
                key.record.state = KeyState::PendingDeletion;
                let days = key.record.pending_window_days.unwrap_or(30);
                key.record.deletion_date = Some(now() + f64::from(days) * DAY);
            }
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

impl Kms {
    /// Destroys a key whose deletion window has ended; a replica first tells
    /// its primary, and waits for the next round if the primary is away.
    pub(crate) async fn destroy(&self, key: &LiveKey) -> KmsResult<()> {
        if let Some(mr) = &key.record.shared.multi_region
            && mr.primary_region != self.region
        {
            let notice = json!({"KeyId": key.record.id, "Region": self.region});
            self.peers.call(&mr.primary_region, "ReplicaDeleted", notice).await?;
        }
        self.store.remove(&key.record.id).await?;
        tracing::info!(key = %key.record.id, "key material destroyed at the end of its deletion window");
        Ok(())
    }
}
