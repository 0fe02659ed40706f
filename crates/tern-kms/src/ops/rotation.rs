//! Key rotation: a new material version becomes current; older versions
//! stay to decrypt what they encrypted. For an MRK only the primary
//! rotates, and the new material reaches every replica.

use serde::Deserialize;
use serde_json::{Value, json};
use tern_crypto::Key256;

use crate::error::{KmsError, KmsResult};
use crate::model::{KeyRecord, KeyState};
use crate::ops::keys::managed;
use crate::store::LiveKey;
use crate::wire::{DAY, now, required};
use crate::{Caller, Kms};

const DEFAULT_PERIOD_DAYS: i64 = 365;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RotationRequest {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

impl Kms {
    /// Refuses a change of shared state (rotation) in a replica region, or
    /// on a key that is not usable.
    fn check_owner(&self, key: &KeyRecord) -> KmsResult<()> {
        if key.shared.multi_region.as_ref().is_some_and(|mr| mr.primary_region != self.region) {
            return Err(KmsError::unsupported(format!(
                "{} is a multi-Region replica key; rotation is managed on the primary key.",
                self.arn(&key.id)
            )));
        }
        match key.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::disabled(&self.arn(&key.id))),
            _ => Err(KmsError::invalid_state(format!("{} is pending deletion.", self.arn(&key.id)))),
        }
    }

    /// Adds a new material version to `key` (in a store update).
    pub(crate) fn rotate(&self, key: &mut LiveKey) -> KmsResult<()> {
        let next = key.materials.keys().next_back().map_or(1, |v| v + 1);
        let material = Key256::random().map_err(|e| KmsError::internal(e.to_string()))?;
        self.store.add_material(key, next, material)
    }
}

pub(crate) async fn set_rotation(kms: &Kms, caller: &Caller, req: RotationRequest, enabled: bool) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    let days = req.rotation_period_in_days.unwrap_or(DEFAULT_PERIOD_DAYS);
    if enabled && !(90..=2560).contains(&days) {
        return Err(KmsError::constraint(
            "rotationPeriodInDays",
            &days.to_string(),
            "Member must have value between 90 and 2560",
        ));
    }
    let days = u32::try_from(days).map_err(|_| KmsError::validation("rotationPeriodInDays is out of range"))?;
    kms.authorize(caller, if enabled { "EnableKeyRotation" } else { "DisableKeyRotation" }, &key)?;
    kms.check_owner(&key.record)?;
    kms.change_shared(&key.record.id, |key| {
        let rotation = &mut key.record.shared.rotation;
        rotation.enabled = enabled;
        rotation.period_days = if enabled { days } else { 0 };
        rotation.next_date = enabled.then(|| now() + f64::from(days) * DAY);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub(crate) fn status(kms: &Kms, caller: &Caller, req: RotationRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "GetKeyRotationStatus")?;
    let rotation = &key.record.shared.rotation;
    let enabled = rotation.enabled && !key.record.state.is_pending_deletion();
    let mut out = json!({"KeyRotationEnabled": enabled, "KeyId": kms.arn(&key.record.id)});
    if enabled {
        out["RotationPeriodInDays"] = json!(rotation.period_days);
        out["NextRotationDate"] = json!(rotation.next_date);
    }
    if let Some(at) = rotation.last_on_demand {
        out["OnDemandRotationStartDate"] = json!(at);
    }
    Ok(out)
}

pub(crate) async fn rotate_on_demand(kms: &Kms, caller: &Caller, req: RotationRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "RotateKeyOnDemand")?;
    kms.check_owner(&key.record)?;
    kms.change_shared(&key.record.id, |key| {
        kms.rotate(key)?;
        key.record.shared.rotation.last_on_demand = Some(now());
        Ok(())
    })
    .await?;
    Ok(json!({ "KeyId": kms.arn(&key.record.id) }))
}
