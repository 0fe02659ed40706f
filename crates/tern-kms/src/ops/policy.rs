//! Key policies: the default policy AWS writes, validation of supplied
//! ones, and Get/Put/ListKeyPolicies.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{KmsError, KmsResult};
use crate::ops::keys::refuse_if_pending_deletion;
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

/// Checks the grammar of a key policy; the message says what is wrong.
pub fn validate(policy: &str) -> KmsResult<()> {
    if policy.len() > MAX_POLICY {
        return Err(KmsError::constraint("policy", "…", "Member must have length less than or equal to 131072"));
    }
    let malformed = |why: &str| KmsError::malformed_policy(why.to_owned());
    let doc: Value = serde_json::from_str(policy).map_err(|_| malformed("The policy is not valid JSON."))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(malformed("Policy document must contain a non-empty Statement.")),
    };
    for statement in &statements {
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => return Err(malformed("Each statement must have an Effect of Allow or Deny.")),
        }
        if statement.get("Principal").is_none() && statement.get("NotPrincipal").is_none() {
            return Err(malformed("Policy contains a statement with no principal."));
        }
        if statement.get("Action").is_none() && statement.get("NotAction").is_none() {
            return Err(malformed("Policy contains a statement with no action."));
        }
    }
    Ok(())
}

/// The policy a new key gets: the caller's, checked, or the default.
pub(crate) fn checked_or_default(kms: &Kms, policy: Option<String>) -> KmsResult<String> {
    match policy {
        Some(policy) => validate(&policy).map(|()| policy),
        None => Ok(default_policy(&kms.account)),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyRequest {
    key_id: Option<String>,
    policy_name: Option<String>,
    policy: Option<String>,
}

fn check_name(name: Option<&str>) -> KmsResult<()> {
    match name {
        None | Some("default") => Ok(()),
        Some(_) => Err(KmsError::not_found("No such policy exists")),
    }
}

pub(crate) fn get_key_policy(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    check_name(req.policy_name.as_deref())?;
    kms.authorize(caller, "GetKeyPolicy", &key.record)?;
    Ok(json!({ "Policy": key.record.policy, "PolicyName": "default" }))
}

pub(crate) async fn put_key_policy(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    check_name(req.policy_name.as_deref())?;
    let policy = checked_or_default(kms, Some(required(req.policy, "policy")?))?;
    kms.authorize(caller, "PutKeyPolicy", &key.record)?;
    kms.store
        .update(&key.record.id, |key| {
            refuse_if_pending_deletion(kms, &key.record)?;
            key.record.policy = policy;
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub(crate) fn list_key_policies(kms: &Kms, caller: &Caller, req: PolicyRequest) -> KmsResult<Value> {
    let key = kms.resolve_key_only(&required(req.key_id, "keyId")?)?;
    kms.authorize(caller, "ListKeyPolicies", &key.record)?;
    Ok(json!({ "PolicyNames": ["default"], "Truncated": false }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_json_naming_the_account_root() {
        let policy = default_policy("111122223333");
        validate(&policy).unwrap();
        let doc: Value = serde_json::from_str(&policy).unwrap();
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert!(policy.starts_with("{\n  \"Version\" : \"2012-10-17\","));
    }

    #[test]
    fn malformed_policies_are_refused_with_a_reason() {
        for bad in ["not json", "{}", r#"{"Statement": []}"#, r#"{"Statement": [{"Effect": "Maybe"}]}"#] {
            let e = validate(bad).unwrap_err();
            assert_eq!(e.code, "MalformedPolicyDocumentException", "{bad}");
            assert!(!e.message.is_empty());
        }
    }
}
