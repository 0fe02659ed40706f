//! Who may use a key, decided as KMS decides: an explicit deny anywhere
//! wins; otherwise the key policy must allow the caller directly, or allow
//! its account (delegating to IAM) while an identity policy allows it too,
//! or a grant on the key must allow the operation.

use std::collections::BTreeMap;

use tern_iam::policy::{Denial, PolicyType, Refusal, Request, RequestContext, Verdict};

use crate::error::{KmsError, KmsResult};
use crate::model::{Grant, KeyRecord};
use crate::store::LiveKey;
use crate::{Caller, Kms};

/// What allowed a call on a key.
#[derive(Debug)]
pub(crate) enum Allowed<'k> {
    /// The key policy, alone or with IAM.
    ByPolicy,
    /// Only these grants (a grantee acting within them).
    ByGrants(Vec<&'k Grant>),
}

impl Kms {
    fn request_context(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> RequestContext {
        let mut cx = caller.context();
        cx.set("kms:CallerAccount", caller.principal.account.clone());
        if let Some(service) = &caller.via_service {
            cx.set("kms:ViaService", service.clone());
        }
        if let Some(source) = &caller.source_arn {
            cx.set("aws:SourceArn", source.clone());
        }
        cx.set("kms:MultiRegion", key.shared.multi_region.is_some().to_string());
        if let Some(mr) = &key.shared.multi_region {
            cx.set("kms:MultiRegionKeyType", if mr.primary_region == self.region { "PRIMARY" } else { "REPLICA" });
        }
        if let Some(ec) = encryption_context {
            for (k, v) in ec {
                cx.set(&format!("kms:EncryptionContext:{k}"), v.clone());
            }
            cx.set_all("kms:EncryptionContextKeys", ec.keys().cloned().collect());
        }
        cx
    }

    /// Whether `caller` may perform the management action `kms:<action>` on `key`.
    pub(crate) fn authorize(&self, caller: &Caller, action: &str, key: &LiveKey) -> KmsResult<()> {
        self.authorization(caller, action, key, None).map(drop)
    }

    /// Whether `caller` may perform `kms:<action>` on `key`, with the
    /// encryption context of a cryptographic call for conditions and grants.
    pub(crate) fn authorize_with_context(
        &self,
        caller: &Caller,
        action: &str,
        key: &LiveKey,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> KmsResult<()> {
        self.authorization(caller, action, key, encryption_context).map(drop)
    }

    /// Decides `kms:<action>` on `key` for `caller`, and says what allowed it.
    pub(crate) fn authorization<'k>(
        &self,
        caller: &Caller,
        action: &str,
        key: &'k LiveKey,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> KmsResult<Allowed<'k>> {
        let arn = self.arn(&key.record.id);
        if caller.principal.is_anonymous() {
            // As on AWS: no key policy reaches an unsigned caller, not even through S3.
            return Err(KmsError::access_denied("Anonymous callers may not use KMS keys."));
        }
        let context = self.request_context(caller, &key.record, encryption_context);
        let qualified = format!("kms:{action}");
        let request = Request { principal: &caller.principal, action: &qualified, resource: &arn, context: &context };
        let Some(policy) = &key.policy else {
            return Self::unreadable_policy(caller, action, &arn);
        };
        let key_policy = policy.evaluate(&request);
        let identity = self.iam.identity_verdict(&request);
        let grants = granted(&key.record.grants, caller, action, encryption_context);
        let refusal = if key_policy.denied {
            Refusal::ExplicitDeny(PolicyType::Resource)
        } else if identity.denied {
            Refusal::ExplicitDeny(PolicyType::Identity)
        } else if allows(key_policy, identity) {
            return Ok(Allowed::ByPolicy);
        } else if !grants.is_empty() {
            return Ok(Allowed::ByGrants(grants));
        } else if key_policy.allowed_for_account {
            Refusal::NoAllow(PolicyType::Identity)
        } else {
            Refusal::NoAllow(PolicyType::Resource)
        };
        Err(Denial::of(&request, refusal).into())
    }

    /// A key whose stored policy no longer parses allows nothing, not even
    /// its grants (the policy may hold a Deny), except that the account may
    /// read and replace the policy.
    fn unreadable_policy<'k>(caller: &Caller, action: &str, arn: &str) -> KmsResult<Allowed<'k>> {
        if caller.is_root() && matches!(action, "GetKeyPolicy" | "PutKeyPolicy") {
            return Ok(Allowed::ByPolicy);
        }
        Err(KmsError::access_denied(format!(
            "The key policy of {arn} cannot be read under current rules; the account must replace it (PutKeyPolicy)."
        )))
    }

    /// Authorizes an action that no key governs (CreateKey, ListKeys, …):
    /// identity policies alone decide.
    pub(crate) fn authorize_account(&self, caller: &Caller, action: &str) -> KmsResult<()> {
        self.authorize_identity(caller, action, "*")
    }

    /// Authorizes `kms:<action>` on `resource` by identity policies alone
    /// (an alias: aliases have no resource policy).
    pub(crate) fn authorize_identity(&self, caller: &Caller, action: &str, resource: &str) -> KmsResult<()> {
        let context = caller.context();
        let qualified = format!("kms:{action}");
        let request = Request { principal: &caller.principal, action: &qualified, resource, context: &context };
        Ok(self.iam.authorize(&request)?)
    }

    /// Whether `policy` lets `caller` change it later (AWS's lockout check).
    pub(crate) fn keeps_control(&self, caller: &Caller, policy: &tern_iam::policy::Policy, key_arn: &str) -> bool {
        let context = caller.context();
        let request =
            Request { principal: &caller.principal, action: "kms:PutKeyPolicy", resource: key_arn, context: &context };
        let verdict = policy.evaluate(&request);
        !verdict.denied && allows(verdict, self.iam.identity_verdict(&request))
    }
}

fn allows(key_policy: Verdict, identity: Verdict) -> bool {
    key_policy.allowed || (key_policy.allowed_for_account && identity.allowed)
}

/// The grants on a key that let `caller` perform `action` in `context`. A
/// grant's constraints bind the encryption context of the call, except for
/// `CreateGrant`, where they bind the grants it creates instead (see
/// `ops::grants`).
fn granted<'k>(
    grants: &'k [Grant],
    caller: &Caller,
    action: &str,
    context: Option<&BTreeMap<String, String>>,
) -> Vec<&'k Grant> {
    let empty = BTreeMap::new();
    let actual = context.unwrap_or(&empty);
    grants
        .iter()
        .filter(|g| g.is_grantee(caller) && g.operations.iter().any(|op| op == action))
        .filter(|g| action == "CreateGrant" || g.constraints.as_ref().is_none_or(|c| c.hold_for(actual)))
        .collect()
}
