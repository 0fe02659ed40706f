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
/// on which the caller may perform `action` (key policy and IAM).
fn target(kms: &Kms, caller: &Caller, target: Option<String>, action: &str) -> KmsResult<std::sync::Arc<LiveKey>> {
    let key = kms.resolve_key_only(&required(target, "targetKeyId")?)?;
    kms.authorize(caller, action, &key)?;
    refuse_if_pending_deletion(kms, &key.record)?;
    Ok(key)
}

/// Authorizes `action` on the alias itself: aliases have no resource
/// policy, so identity policies decide, on the alias's ARN.
fn authorize_alias(kms: &Kms, caller: &Caller, action: &str, name: &str) -> KmsResult<()> {
    kms.authorize_identity(caller, action, &kms.alias_arn(name))
}

/// The aliases of AWS managed keys belong to AWS: nobody changes them.
fn refuse_reserved(name: &str) -> KmsResult<()> {
    if name.starts_with("alias/aws/") {
        return Err(KmsError::not_authorized(format!(
            "{name} is reserved for AWS managed keys and cannot be changed."
        )));
    }
    Ok(())
}

pub(crate) async fn create_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    validate_alias_name(&name)?;
    authorize_alias(kms, caller, "CreateAlias", &name)?;
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

/// Repoints an alias: AWS requires `kms:UpdateAlias` on the alias, on the
/// key it points at now, and on the new key, so nobody can take over an
/// alias (and whatever later encrypts under it) with rights to one key only.
pub(crate) async fn update_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    refuse_reserved(&name)?;
    let missing = || KmsError::not_found(format!("Alias {} is not found.", kms.alias_arn(&name)));
    let current = kms.store.alias(&name).ok_or_else(missing)?;
    authorize_alias(kms, caller, "UpdateAlias", &name)?;
    if let Some(key) = kms.store.key(&current.target) {
        kms.authorize(caller, "UpdateAlias", &key)?;
    }
    let key = target(kms, caller, req.target_key_id, "UpdateAlias")?;
    kms.store
        .put_alias(&name, |old| {
            let old = old.ok_or_else(missing)?;
            if old.target != current.target {
                return Err(KmsError::invalid_state(format!("Alias {name} changed during the update; retry.")));
            }
            Ok(AliasRecord { target: key.record.id.clone(), updated: now(), ..old.clone() })
        })
        .await?;
    Ok(json!({}))
}

pub(crate) async fn delete_alias(kms: &Kms, caller: &Caller, req: AliasRequest) -> KmsResult<Value> {
    let name = required(req.alias_name, "aliasName")?;
    refuse_reserved(&name)?;
    let missing = || KmsError::not_found(format!("Alias {} is not found.", kms.alias_arn(&name)));
    let alias = kms.store.alias(&name).ok_or_else(missing)?;
    authorize_alias(kms, caller, "DeleteAlias", &name)?;
    if let Some(key) = kms.store.key(&alias.target) {
        kms.authorize(caller, "DeleteAlias", &key)?;
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
