//! Inline policies of users and roles, within AWS's size quotas.

use std::collections::BTreeMap;

use super::call::Holder;
use super::{check_name, no_role, no_user};
use crate::error::{IamError, IamResult};
use crate::model::Directory;
use crate::policy::{Policy, PolicyError};
use crate::service::Iam;
use crate::xml::{element, leaf};

/// AWS's quotas on the inline policies of one identity, in characters
/// other than whitespace (IAM does not count whitespace).
const USER_POLICIES_MAX: usize = 2048;
const ROLE_POLICIES_MAX: usize = 10_240;
/// A role's trust policy (AWS's default quota).
const TRUST_POLICY_MAX: usize = 2048;

fn counted_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// Refuses a trust policy over AWS's quota.
pub(crate) fn check_trust_size(document: &str) -> IamResult<()> {
    if counted_size(document) > TRUST_POLICY_MAX {
        return Err(IamError::limit_exceeded(format!("Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_MAX}")));
    }
    Ok(())
}

/// Parses a policy and refuses principals that do not exist, as AWS does.
pub(crate) fn checked_policy(
    directory: &Directory,
    text: &str,
    parse: fn(&str) -> Result<Policy, PolicyError>,
) -> IamResult<()> {
    let policy = parse(text).map_err(|e| IamError::malformed_policy(e.0))?;
    if let Some(missing) = policy.named_principals().into_iter().find(|p| !directory.principal_exists(p)) {
        return Err(IamError::malformed_policy(format!("Invalid principal in policy: \"AWS\":\"{missing}\"")));
    }
    Ok(())
}

impl Holder {
    fn name(&self) -> &str {
        match self {
            Self::User(n) | Self::Role(n) => n,
        }
    }

    fn name_field(&self) -> &'static str {
        match self {
            Self::User(_) => "UserName",
            Self::Role(_) => "RoleName",
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Role(_) => "role",
        }
    }

    fn quota(&self) -> usize {
        match self {
            Self::User(_) => USER_POLICIES_MAX,
            Self::Role(_) => ROLE_POLICIES_MAX,
        }
    }

    fn policies<'d>(&self, d: &'d Directory) -> IamResult<&'d BTreeMap<String, String>> {
        match self {
            Self::User(n) => d.users.get(n).map(|u| &u.policies).ok_or_else(|| no_user(n)),
            Self::Role(n) => d.roles.get(n).map(|r| &r.policies).ok_or_else(|| no_role(n)),
        }
    }

    fn policies_mut<'d>(&self, d: &'d mut Directory) -> IamResult<&'d mut BTreeMap<String, String>> {
        match self {
            Self::User(n) => d.users.get_mut(n).map(|u| &mut u.policies).ok_or_else(|| no_user(n)),
            Self::Role(n) => d.roles.get_mut(n).map(|r| &mut r.policies).ok_or_else(|| no_role(n)),
        }
    }

    fn not_found(&self, policy_name: &str) -> IamError {
        IamError::no_such_entity(format!("The {} policy with name {policy_name} cannot be found.", self.noun()))
    }
}

impl Iam {
    pub(super) async fn put_policy(&self, holder: Holder, policy_name: String, document: String) -> IamResult<()> {
        check_name("policyName", &policy_name, 128)?;
        self.update(|d| {
            checked_policy(d, &document, Policy::identity)?;
            let policies = holder.policies_mut(d)?;
            let others: usize =
                policies.iter().filter(|(name, _)| **name != policy_name).map(|(_, text)| counted_size(text)).sum();
            if others + counted_size(&document) > holder.quota() {
                return Err(IamError::limit_exceeded(format!(
                    "Maximum policy size of {} bytes exceeded for {} {}",
                    holder.quota(),
                    holder.noun(),
                    holder.name()
                )));
            }
            policies.insert(policy_name, document);
            Ok(())
        })
        .await
    }

    pub(super) fn get_policy(&self, holder: &Holder, policy_name: &str) -> IamResult<String> {
        let directory = self.directory();
        let document = holder.policies(&directory)?.get(policy_name).ok_or_else(|| holder.not_found(policy_name))?;
        let mut out = String::new();
        leaf(&mut out, holder.name_field(), holder.name());
        leaf(&mut out, "PolicyName", policy_name);
        leaf(&mut out, "PolicyDocument", &urlencoding::encode(document));
        Ok(out)
    }

    pub(super) fn list_policies(&self, holder: &Holder) -> IamResult<String> {
        let directory = self.directory();
        let names: Vec<String> = holder.policies(&directory)?.keys().cloned().collect();
        let mut out = String::new();
        element(&mut out, "PolicyNames", |out| names.iter().for_each(|n| leaf(out, "member", n)));
        leaf(&mut out, "IsTruncated", "false");
        Ok(out)
    }

    pub(super) async fn delete_policy(&self, holder: Holder, policy_name: String) -> IamResult<()> {
        self.update(|d| {
            holder.policies_mut(d)?.remove(&policy_name).map(|_| ()).ok_or_else(|| holder.not_found(&policy_name))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_count_toward_quotas() {
        assert_eq!(counted_size("{ \"a\" :\n\t1 }"), 7);
        assert!(check_trust_size(&" ".repeat(10_000)).is_ok());
        assert!(check_trust_size(&"x".repeat(2049)).is_err());
    }
}
