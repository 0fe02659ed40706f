//! Grants: per-key, per-region permissions for one grantee, with optional
//! encryption-context constraints. They are stored and listed here; the
//! authorization hook consults them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::Allowed;
use crate::error::{KmsError, KmsResult};
use crate::model::{Grant, GrantConstraints};
use crate::ops::keys::{managed, refuse_if_pending_deletion};
use crate::ops::page;
use crate::wire::{now, required};
use crate::{Caller, Kms};

/// The operations a grant may allow, as the model's GrantOperation enum.
const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct GrantRequest {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<GrantConstraints>,
    name: Option<String>,
    grant_id: Option<String>,
    grant_token: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    dry_run: Option<bool>,
}

fn random_hex(bytes: usize) -> KmsResult<String> {
    let mut buf = vec![0u8; bytes];
    tern_crypto::fill_random(&mut buf).map_err(|e| KmsError::internal(e.to_string()))?;
    Ok(hex::encode(buf))
}

fn checked_operations(operations: Option<Vec<String>>) -> KmsResult<Vec<String>> {
    let operations = required(operations, "operations")?;
    if operations.is_empty() {
        return Err(KmsError::constraint("operations", "[]", "Member must have length greater than or equal to 1"));
    }
    if let Some(bad) = operations.iter().find(|op| !GRANT_OPERATIONS.contains(&op.as_str())) {
        return Err(KmsError::constraint(
            "operations",
            bad,
            "Member must satisfy constraint: [Member must satisfy enum value set of GrantOperation]",
        ));
    }
    Ok(operations)
}

/// A grantee creating a grant through its own grant may hand on only what
/// that grant gives: a subset of its operations, under constraints at least
/// as strict (AWS: "the grantee can create grants only with operations and
/// constraints of its own grant").
fn within_a_parent(parents: &[&Grant], operations: &[String], constraints: Option<&GrantConstraints>) -> KmsResult<()> {
    let unconstrained = GrantConstraints::default();
    let fits = |parent: &&Grant| {
        operations.iter().all(|op| parent.operations.contains(op))
            && parent.constraints.as_ref().is_none_or(|p| constraints.unwrap_or(&unconstrained).within(p))
    };
    if parents.iter().any(fits) {
        return Ok(());
    }
    Err(KmsError::access_denied(
        "A grant created through a grant may only include that grant's operations, under its constraints.",
    ))
}

pub(crate) async fn create_grant(kms: &Kms, caller: &Caller, req: GrantRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    let grantee = required(req.grantee_principal, "granteePrincipal")?;
    let operations = checked_operations(req.operations)?;
    if let Allowed::ByGrants(parents) = kms.authorization(caller, "CreateGrant", &key, None)? {
        within_a_parent(&parents, &operations, req.constraints.as_ref())?;
    }
    if req.dry_run == Some(true) {
        return Err(KmsError::dry_run());
    }
    let fresh = Grant {
        id: random_hex(32)?,
        token: random_hex(48)?,
        name: req.name,
        created: now(),
        grantee,
        retiring: req.retiring_principal,
        issuing_account: caller.principal.account.clone(),
        operations,
        constraints: req.constraints,
    };
    let grant = kms
        .store
        .update(&key.record.id, |key| {
            refuse_if_pending_deletion(kms, &key.record)?;
            // A retried CreateGrant with the same name and terms returns the same grant.
            let same = |g: &&Grant| {
                g.name.is_some()
                    && g.name == fresh.name
                    && g.grantee == fresh.grantee
                    && g.operations == fresh.operations
                    && g.constraints == fresh.constraints
            };
            if let Some(existing) = key.record.grants.iter().find(same) {
                return Ok(existing.clone());
            }
            key.record.grants.push(fresh.clone());
            Ok(fresh)
        })
        .await?;
    Ok(json!({ "GrantId": grant.id, "GrantToken": grant.token }))
}

fn grant_json(kms: &Kms, key_id: &str, g: &Grant) -> Value {
    let mut out = json!({
        "KeyId": kms.arn(key_id),
        "GrantId": g.id,
        "CreationDate": g.created,
        "GranteePrincipal": g.grantee,
        "IssuingAccount": format!("arn:aws:iam::{}:root", g.issuing_account),
        "Operations": g.operations,
    });
    if let Some(name) = &g.name {
        out["Name"] = json!(name);
    }
    if let Some(retiring) = &g.retiring {
        out["RetiringPrincipal"] = json!(retiring);
    }
    if let Some(constraints) = &g.constraints {
        out["Constraints"] = json!(constraints);
    }
    out
}

pub(crate) fn list_grants(kms: &Kms, caller: &Caller, req: GrantRequest) -> KmsResult<Value> {
    let key = managed(kms, caller, req.key_id, "ListGrants")?;
    let grants: Vec<&Grant> = key
        .record
        .grants
        .iter()
        .filter(|g| req.grant_id.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| req.grantee_principal.as_ref().is_none_or(|p| &g.grantee == p))
        .collect();
    let mut out = serde_json::Map::new();
    let grants = page(grants, |g| &g.id, req.marker.as_deref(), req.limit, &mut out)?;
    out.insert("Grants".into(), grants.iter().map(|g| grant_json(kms, &key.record.id, g)).collect());
    Ok(Value::Object(out))
}

/// Removes the grant `matches` picks from key `key_id`.
async fn remove_grant(kms: &Kms, key_id: &str, matches: impl Fn(&Grant) -> bool) -> KmsResult<()> {
    kms.store
        .update(key_id, |key| {
            let before = key.record.grants.len();
            key.record.grants.retain(|g| !matches(g));
            if key.record.grants.len() == before {
                return Err(KmsError::not_found("Grant not found"));
            }
            Ok(())
        })
        .await
}

/// Who may retire a grant, as AWS decides it (by the grant, not by any
/// policy): the account that created it, its retiring principal, or its
/// grantee when the grant itself includes `RetireGrant`.
fn may_retire(grant: &Grant, caller: &Caller) -> bool {
    (caller.is_root() && caller.principal.account == grant.issuing_account)
        || grant.is_retiring_principal(caller)
        || (grant.is_grantee(caller) && grant.operations.iter().any(|op| op == "RetireGrant"))
}

pub(crate) async fn retire_grant(kms: &Kms, caller: &Caller, req: GrantRequest) -> KmsResult<Value> {
    if req.dry_run == Some(true) {
        return Err(KmsError::dry_run());
    }
    let (key, grant_id) = match req.grant_token {
        Some(token) => kms
            .store
            .keys()
            .into_iter()
            .find_map(|k| {
                let id = k.record.grants.iter().find(|g| g.has_token(&token))?.id.clone();
                Some((k, id))
            })
            .ok_or_else(KmsError::invalid_grant_token)?,
        None => (kms.resolve_key_only(&required(req.key_id, "keyId")?)?, required(req.grant_id, "grantId")?),
    };
    let grant = key.record.grants.iter().find(|g| g.id == grant_id).ok_or_else(KmsError::invalid_grant_id)?;
    if !may_retire(grant, caller) {
        return Err(KmsError::access_denied(format!(
            "User: {} is not authorized to retire grant {grant_id}: only its creating account, its retiring \
             principal, or a grantee whose grant includes RetireGrant may.",
            caller.principal.caller_arn()
        )));
    }
    remove_grant(kms, &key.record.id, |g| g.id == grant_id).await.map(|()| json!({}))
}

pub(crate) async fn revoke_grant(kms: &Kms, caller: &Caller, req: GrantRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    let grant_id = required(req.grant_id, "grantId")?;
    kms.authorize(caller, "RevokeGrant", &key)?;
    if req.dry_run == Some(true) {
        return Err(KmsError::dry_run());
    }
    if !key.record.grants.iter().any(|g| g.id == grant_id) {
        return Err(KmsError::invalid_grant_id());
    }
    remove_grant(kms, &key.record.id, |g| g.id == grant_id).await.map(|()| json!({}))
}
