//! Key policies: the default policy AWS writes, validation of supplied
//! ones, and Get/Put/ListKeyPolicies.

use serde::Deserialize;
use serde_json::{Value, json};

use tern_iam::policy::Policy;

use crate::error::{KmsError, KmsResult};
use crate::ops::keys::{change_record, managed};
use crate::wire::required;
use crate::{Caller, Kms};

/// AWS's longest key policy.
const MAX_POLICY: usize = 131_072;

/// The policy CreateKey and ReplicateKey attach when given none, written
/// exactly as GetKeyPolicy returns it on AWS.
#[must_use]
pub fn default_policy(account: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \
         \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \
         \"arn:aws:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

/// The policy of an AWS managed key: any principal of the account may use
/// it through `via_service`, and nothing else may.
#[must_use]
pub fn managed_policy(account: &str, via_service: &str) -> String {
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "auto-s3-2",
        "Statement": [
            {
                "Sid": "Allow access through S3 for all principals in the account that are authorized to use S3",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via_service}},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value serializes")
}

/// Checks a key policy as AWS does: its length, its grammar, and that every
/// user or role it names exists.
pub(crate) async fn validate(kms: &Kms, text: &str) -> KmsResult<Policy> {
    if text.len() > MAX_POLICY {
        return Err(KmsError::constraint("policy", "…", "Member must have length less than or equal to 131072"));
    }
    let policy = Policy::resource(text).map_err(|e| KmsError::malformed_policy(e.0))?;
    if !kms.iam.principals_exist_current(&policy.named_principals()).await {
        return Err(KmsError::malformed_policy("Policy contains a statement with one or more invalid principals."));
    }
    Ok(policy)
}

/// The policy a key gets: the caller's, checked, or the default. Unless the
/// caller bypasses the lockout check, the policy must let the caller change
/// it again later.
pub(crate) async fn checked_or_default(
    kms: &Kms,
    caller: &Caller,
    policy: Option<String>,
    bypass_lockout_check: Option<bool>,
    key_id: &str,
) -> KmsResult<String> {
    let Some(text) = policy else { return Ok(default_policy(&kms.account)) };
    let policy = validate(kms, &text).await?;
    if bypass_lockout_check != Some(true) && !kms.keeps_control(caller, &policy, &kms.arn(key_id)) {
        return Err(KmsError::malformed_policy(
            "The new key policy will not allow you to update the key policy in the future.",
        ));
    }
    Ok(text)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyRequest {
    key_id: Option<String>,
    policy_name: Option<String>,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
}

fn check_name(name: Option<&str>) -> KmsResult<()> {
    match name {
        None | Some("default") => Ok(()),
        Some(_) => Err(KmsError::not_found("No such policy exists")),
    }
}

pub(crate) fn get_key_policy(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    check_name(req.policy_name.as_deref())?;
    let key = managed(kms, caller, req.key_id, "GetKeyPolicy")?;
    Ok(json!({ "Policy": key.record.policy, "PolicyName": "default" }))
}

pub(crate) async fn put_key_policy(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    check_name(req.policy_name.as_deref())?;
    let text = Some(required(req.policy, "policy")?);
    let key = managed(kms, caller, req.key_id, "PutKeyPolicy")?;
    let policy = checked_or_default(kms, caller, text, req.bypass_policy_lockout_safety_check, &key.record.id).await?;
    change_record(kms, &key.record.id, |record| {
        record.policy = policy;
        Ok(())
    })
    .await
}

pub(crate) fn list_key_policies(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    managed(kms, caller, req.key_id, "ListKeyPolicies")?;
    Ok(json!({ "PolicyNames": ["default"], "Truncated": false }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_a_valid_key_policy_naming_the_account_root() {
        let policy = default_policy("111122223333");
        Policy::resource(&policy).unwrap();
        let doc: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert!(policy.starts_with("{\n  \"Version\" : \"2012-10-17\","));
        Policy::resource(&managed_policy("111122223333", "s3.us-east-1.amazonaws.com")).unwrap();
    }
}
