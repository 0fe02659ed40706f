//! Who may use a key, decided as KMS decides: an explicit deny anywhere
//! wins; otherwise the key policy must allow the caller directly, or allow
//! its account (delegating to IAM) while an identity policy allows it too,
//! or a grant on the key must allow the operation.

use std::collections::BTreeMap;

use tern_iam::policy::{Request, RequestContext, Verdict};

use crate::error::{KmsError, KmsResult};
use crate::model::{Grant, KeyRecord};
use crate::{Caller, Kms};

impl Kms {
    fn request_context(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> RequestContext {
        let mut cx = RequestContext::default();
        cx.set("kms:CallerAccount", caller.principal.account.clone());
        cx.set("aws:PrincipalAccount", caller.principal.account.clone());
        cx.set("aws:PrincipalArn", caller.principal.arn.clone());
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
    pub(crate) fn authorize(&self, caller: &Caller, action: &str, key: &KeyRecord) -> KmsResult<()> {
        self.authorize_with_context(caller, action, key, None)
    }

    /// Whether `caller` may perform `kms:<action>` on `key`, with the
    /// encryption context of a cryptographic call for conditions and grants.
    pub(crate) fn authorize_with_context(
        &self,
        caller: &Caller,
        action: &str,
        key: &KeyRecord,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> KmsResult<()> {
        let arn = self.arn(&key.id);
        let context = self.request_context(caller, key, encryption_context);
        let qualified = format!("kms:{action}");
        let request = Request { principal: &caller.principal, action: &qualified, resource: &arn, context: &context };
        let key_policy =
            tern_iam::policy::Policy::resource(&key.policy).map(|p| p.evaluate(&request)).unwrap_or_default();
        let identity = self.iam.identity_verdict(&request);
        let why = if key_policy.denied {
            "with an explicit deny in a resource-based policy"
        } else if identity.denied {
            "with an explicit deny in an identity-based policy"
        } else if allows(key_policy, identity) || granted(&key.grants, caller, action, encryption_context) {
            return Ok(());
        } else if key_policy.allowed_for_account {
            "because no identity-based policy allows the action"
        } else {
            "because no resource-based policy allows the action"
        };
        Err(KmsError::access_denied(format!(
            "User: {} is not authorized to perform: {qualified} on resource: {arn} {why}",
            caller.principal.caller_arn()
        )))
    }

    /// Authorizes an action that no key governs (CreateKey, ListKeys, …):
    /// identity policies alone decide.
    pub(crate) fn authorize_account(&self, caller: &Caller, action: &str) -> KmsResult<()> {
        let context = RequestContext::default();
        let qualified = format!("kms:{action}");
        let request = Request { principal: &caller.principal, action: &qualified, resource: "*", context: &context };
        self.iam.authorize(&request).map_err(KmsError::access_denied)
    }

    /// Whether `policy` lets `caller` change it later (AWS's lockout check).
    pub(crate) fn keeps_control(&self, caller: &Caller, policy: &tern_iam::policy::Policy, key_arn: &str) -> bool {
        let context = RequestContext::default();
        let request =
            Request { principal: &caller.principal, action: "kms:PutKeyPolicy", resource: key_arn, context: &context };
        let verdict = policy.evaluate(&request);
        !verdict.denied && allows(verdict, self.iam.identity_verdict(&request))
    }
}

fn allows(key_policy: Verdict, identity: Verdict) -> bool {
    key_policy.allowed || (key_policy.allowed_for_account && identity.allowed)
}

fn granted(grants: &[Grant], caller: &Caller, action: &str, context: Option<&BTreeMap<String, String>>) -> bool {
    let who = [Some(caller.principal.arn.as_str()), caller.principal.session_arn.as_deref()];
    grants.iter().any(|g| {
        who.contains(&Some(g.grantee.as_str()))
            && g.operations.iter().any(|op| op == action)
            && g.constraints.as_ref().is_none_or(|c| {
                let empty = BTreeMap::new();
                let actual = context.unwrap_or(&empty);
                c.encryption_context_equals.as_ref().is_none_or(|eq| eq == actual)
                    && c.encryption_context_subset
                        .as_ref()
                        .is_none_or(|sub| sub.iter().all(|(k, v)| actual.get(k) == Some(v)))
            })
    })
}
