//! One module per family of TrentService operations; [`dispatch`] routes
//! an operation name to its handler.

pub mod aliases;
pub mod crypto;
pub mod grants;
pub mod keys;
pub mod multi_region;
pub mod policy;
pub mod rotation;

use serde_json::Value;

use crate::error::{KmsError, KmsResult};
use crate::wire::parse;
use crate::{Caller, Kms};

pub(crate) async fn dispatch(kms: &Kms, caller: &Caller, operation: &str, body: &[u8]) -> KmsResult<Value> {
    match operation {
        "Encrypt" => crypto::encrypt(kms, caller, parse(body)?),
        "Decrypt" => crypto::decrypt(kms, caller, parse(body)?),
        "ReEncrypt" => crypto::re_encrypt(kms, caller, parse(body)?),
        "GenerateDataKey" => crypto::generate_data_key(kms, caller, parse(body)?, true),
        "GenerateDataKeyWithoutPlaintext" => crypto::generate_data_key(kms, caller, parse(body)?, false),
        "GenerateRandom" => crypto::generate_random(&parse(body)?),
        "CreateKey" => keys::create_key(kms, caller, parse(body)?).await,
        "DescribeKey" => keys::describe_key(kms, caller, parse(body)?),
        "ListKeys" => keys::list_keys(kms, caller, &parse(body)?),
        "EnableKey" => keys::set_enabled(kms, caller, parse(body)?, true).await,
        "DisableKey" => keys::set_enabled(kms, caller, parse(body)?, false).await,
        "ScheduleKeyDeletion" => keys::schedule_deletion(kms, caller, parse(body)?).await,
        "CancelKeyDeletion" => keys::cancel_deletion(kms, caller, parse(body)?).await,
        "UpdateKeyDescription" => keys::update_description(kms, caller, parse(body)?).await,
        "TagResource" => keys::tag_resource(kms, caller, parse(body)?).await,
        "UntagResource" => keys::untag_resource(kms, caller, parse(body)?).await,
        "ListResourceTags" => keys::list_resource_tags(kms, caller, parse(body)?),
        "GetKeyPolicy" => policy::get_key_policy(kms, caller, parse(body)?),
        "PutKeyPolicy" => policy::put_key_policy(kms, caller, parse(body)?).await,
        "ListKeyPolicies" => policy::list_key_policies(kms, caller, parse(body)?),
        "EnableKeyRotation" => rotation::set_rotation(kms, caller, parse(body)?, true).await,
        "DisableKeyRotation" => rotation::set_rotation(kms, caller, parse(body)?, false).await,
        "GetKeyRotationStatus" => rotation::status(kms, caller, parse(body)?),
        "RotateKeyOnDemand" => rotation::rotate_on_demand(kms, caller, parse(body)?).await,
        "CreateAlias" => aliases::create_alias(kms, caller, parse(body)?).await,
        "UpdateAlias" => aliases::update_alias(kms, caller, parse(body)?).await,
        "DeleteAlias" => aliases::delete_alias(kms, caller, parse(body)?).await,
        "ListAliases" => aliases::list_aliases(kms, caller, &parse(body)?),
        "CreateGrant" => grants::create_grant(kms, caller, parse(body)?).await,
        "ListGrants" => grants::list_grants(kms, caller, parse(body)?),
        "RetireGrant" => grants::retire_grant(kms, caller, parse(body)?).await,
        "RevokeGrant" => grants::revoke_grant(kms, caller, parse(body)?).await,
        "ReplicateKey" => multi_region::replicate_key(kms, caller, parse(body)?).await,
        "UpdatePrimaryRegion" => multi_region::update_primary_region(kms, caller, parse(body)?).await,
        _ => Err(KmsError::unknown_operation(operation)),
    }
}

/// A page of `items` after `marker` (exclusive), `limit` long (1–1000,
/// default 100), with AWS's `Truncated`/`NextMarker` members added to `out`.
pub(crate) fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: Option<i64>,
    out: &mut serde_json::Map<String, Value>,
) -> KmsResult<Vec<T>> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(KmsError::constraint("limit", &limit.to_string(), "Member must have value between 1 and 1000"));
    }
    let start = match marker {
        None => 0,
        Some(m) => items.iter().position(|i| id(i) > m).unwrap_or(items.len()),
    };
    if marker.is_some_and(str::is_empty) {
        return Err(KmsError::invalid_marker());
    }
    let limit = usize::try_from(limit).expect("1..=1000");
    let truncated = items.len() > start + limit;
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    out.insert("Truncated".into(), Value::Bool(truncated));
    if truncated && let Some(last) = page.last() {
        out.insert("NextMarker".into(), Value::String(id(last).to_owned()));
    }
    Ok(page)
}
