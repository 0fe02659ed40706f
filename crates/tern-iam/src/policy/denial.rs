//! A refused request, carrying what AWS's `AccessDenied` message names:
//! who, which action, on what, and which kind of policy decided. Each
//! service turns it into its own error in one place.

use std::fmt;

use super::Request;

/// The kind of policy a denial names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// A user's or role's own policies.
    Identity,
    /// A policy attached to the resource (a key policy).
    Resource,
}

/// Why the policies refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A statement of this kind of policy denies the request.
    ExplicitDeny(PolicyType),
    /// No statement of this kind of policy allows it.
    NoAllow(PolicyType),
}

/// A request the policies refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The caller's ARN as AWS names it (the session's for an assumed role).
    pub caller: String,
    pub action: String,
    pub resource: String,
    pub refusal: Refusal,
}

impl Denial {
    #[must_use]
    pub fn of(request: &Request<'_>, refusal: Refusal) -> Self {
        Self {
            caller: request.principal.caller_arn().to_owned(),
            action: request.action.to_owned(),
            resource: request.resource.to_owned(),
            refusal,
        }
    }
}

/// AWS's wording.
impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.refusal {
            Refusal::ExplicitDeny(PolicyType::Identity) => "with an explicit deny in an identity-based policy",
            Refusal::ExplicitDeny(PolicyType::Resource) => "with an explicit deny in a resource-based policy",
            Refusal::NoAllow(PolicyType::Identity) => "because no identity-based policy allows the action",
            Refusal::NoAllow(PolicyType::Resource) => "because no resource-based policy allows the action",
        };
        write!(
            f,
            "User: {} is not authorized to perform: {} on resource: {} {why}",
            self.caller, self.action, self.resource
        )
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Principal, RequestContext};

    #[test]
    fn denials_read_as_aws_words_them() {
        let role = Principal::assumed_role("111122223333", "arn:aws:iam::111122223333:role/app", "job", None);
        let context = RequestContext::of(&role);
        let request =
            Request { principal: &role, action: "s3:GetObject", resource: "arn:aws:s3:::b/k", context: &context };
        let denial = Denial::of(&request, Refusal::ExplicitDeny(PolicyType::Resource));
        assert_eq!(
            denial.to_string(),
            "User: arn:aws:sts::111122223333:assumed-role/app/job is not authorized to perform: s3:GetObject on \
             resource: arn:aws:s3:::b/k with an explicit deny in a resource-based policy"
        );
        let denial = Denial { refusal: Refusal::NoAllow(PolicyType::Identity), ..denial };
        assert!(denial.to_string().ends_with("because no identity-based policy allows the action"));
    }
}
