//! Aliases: per-region names for keys, usable wherever a KeyId is.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{KmsError, KmsResult};
use crate::ids::validate_alias_name;
use crate::model::AliasRecord;
use crate::ops::keys::{ListRequest, refuse_if_pending_deletion};
use crate::ops::page;
use crate::store::LiveKey;
use crate::wire::{now, required};
use crate::{Caller, Kms};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AliasRequest {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

/// The key an alias may point at: an existing key, not pending deletion,
/// that the caller may manage.
fn target(kms: &Kms, caller: &Caller, target: Option<String>, action: &str) -> KmsResult<std::sync::Arc<LiveKey>> {
    let key = kms.resolve_key_only(&required(target, "targetKeyId")?)?;
    kms.authorize(caller, action, &key.record)?;
    refuse_if_pending_deletion(kms, &key.record)?;
    Ok(key)
}

pub(crate) async fn create_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    validate_alias_name(&name)?;
    let key = target(kms, caller, req.target_key_id, "CreateAlias")?;
    let exists = KmsError::already_exists(format!("An alias with the name {} already exists", kms.alias_arn(&name)));
    kms.store
        .put_alias(&name, |old| {
            if old.is_some() {
                return Err(exists);
            }
            let at = now();
            Ok(AliasRecord { name: name.clone(), target: key.record.id.clone(), created: at, updated: at })
        })
        .await?;
    Ok(json!({}))
}

pub(crate) async fn update_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    let key = target(kms, caller, req.target_key_id, "UpdateAlias")?;
    let missing = KmsError::not_found(format!("Alias {} is not found.", kms.alias_arn(&name)));
    kms.store
        .put_alias(&name, |old| {
            let old = old.ok_or(missing)?;
            Ok(AliasRecord { target: key.record.id.clone(), updated: now(), ..old.clone() })
        })
        .await?;
    Ok(json!({}))
}

pub(crate) async fn delete_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    let missing = || KmsError::not_found(format!("Alias {} is not found.", kms.alias_arn(&name)));
    let alias = kms.store.alias(&name).ok_or_else(missing)?;
    if let Some(key) = kms.store.key(&alias.target) {
        kms.authorize(caller, "DeleteAlias", &key.record)?;
    }
    kms.store.delete_alias(&name, missing()).await?;
    Ok(json!({}))
}

pub(crate) fn list_aliases(kms: &Kms, caller: &Caller, req: &ListRequest) -> KmsResult<Value> {
    kms.authorize_account(caller, "ListAliases")?;
    let filter = match req.key_id.as_deref() {
        Some(key_id) => Some(kms.resolve_key_only(key_id)?.record.id.clone()),
        None => None,
    };
    let aliases: Vec<AliasRecord> =
        kms.store.aliases().into_iter().filter(|a| filter.as_ref().is_none_or(|id| &a.target == id)).collect();
    let mut out = serde_json::Map::new();
    let aliases = page(aliases, |a| &a.name, req.marker.as_deref(), req.limit, &mut out)?;
    let aliases: Vec<Value> = aliases
        .iter()
        .map(|a| {
            json!({
                "AliasName": a.name,
                "AliasArn": kms.alias_arn(&a.name),
                "TargetKeyId": a.target,
                "CreationDate": a.created,
                "LastUpdatedDate": a.updated,
            })
        })
        .collect();
    out.insert("Aliases".into(), Value::Array(aliases));
    Ok(Value::Object(out))
}
