//! One IAM query-API request, read from exactly the parameters its action
//! takes. Authorization and the handler work from the same fields, so no
//! parameter can steer one without the other (a `RoleName` added to
//! `PutUserPolicy` is never read), and parameters an action does not take
//! are never consulted.

use super::{Params, param, required};
use crate::error::{IamError, IamResult};
use crate::policy::Principal;

/// The user or role whose inline policies a call is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    User(String),
    Role(String),
}

/// A role as `CreateRole` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewRole {
    pub name: String,
    pub trust: String,
    pub max_session: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    CreateUser {
        user: String,
    },
    /// Without a name: the caller.
    GetUser {
        user: Option<String>,
    },
    ListUsers,
    DeleteUser {
        user: String,
    },
    CreateAccessKey {
        user: Option<String>,
    },
    ListAccessKeys {
        user: Option<String>,
    },
    DeleteAccessKey {
        user: Option<String>,
        key_id: String,
    },
    CreateRole(NewRole),
    GetRole {
        role: String,
    },
    ListRoles,
    DeleteRole {
        role: String,
    },
    PutPolicy {
        holder: Holder,
        name: String,
        document: String,
    },
    GetPolicy {
        holder: Holder,
        name: String,
    },
    ListPolicies {
        holder: Holder,
    },
    DeletePolicy {
        holder: Holder,
        name: String,
    },
}

fn owned(params: &Params, name: &str) -> IamResult<String> {
    required(params, name).map(str::to_owned)
}

fn optional(params: &Params, name: &str) -> Option<String> {
    param(params, name).map(str::to_owned)
}

impl Call {
    /// Reads `action`'s parameters from `params`.
    pub fn parse(action: &str, params: &Params) -> IamResult<Self> {
        let user = || owned(params, "UserName");
        let role = || owned(params, "RoleName");
        let holder = || -> IamResult<Holder> {
            if action.contains("Role") { role().map(Holder::Role) } else { user().map(Holder::User) }
        };
        let policy_name = || owned(params, "PolicyName");
        Ok(match action {
            "CreateUser" => Self::CreateUser { user: user()? },
            "GetUser" => Self::GetUser { user: optional(params, "UserName") },
            "ListUsers" => Self::ListUsers,
            "DeleteUser" => Self::DeleteUser { user: user()? },
            "CreateAccessKey" => Self::CreateAccessKey { user: optional(params, "UserName") },
            "ListAccessKeys" => Self::ListAccessKeys { user: optional(params, "UserName") },
            "DeleteAccessKey" => {
                Self::DeleteAccessKey { user: optional(params, "UserName"), key_id: owned(params, "AccessKeyId")? }
            }
            "CreateRole" => Self::CreateRole(NewRole {
                name: role()?,
                trust: owned(params, "AssumeRolePolicyDocument")?,
                max_session: optional(params, "MaxSessionDuration"),
                description: optional(params, "Description").unwrap_or_default(),
            }),
            "GetRole" => Self::GetRole { role: role()? },
            "ListRoles" => Self::ListRoles,
            "DeleteRole" => Self::DeleteRole { role: role()? },
            "PutUserPolicy" | "PutRolePolicy" => {
                Self::PutPolicy { holder: holder()?, name: policy_name()?, document: owned(params, "PolicyDocument")? }
            }
            "GetUserPolicy" | "GetRolePolicy" => Self::GetPolicy { holder: holder()?, name: policy_name()? },
            "ListUserPolicies" | "ListRolePolicies" => Self::ListPolicies { holder: holder()? },
            "DeleteUserPolicy" | "DeleteRolePolicy" => Self::DeletePolicy { holder: holder()?, name: policy_name()? },
            other => return Err(IamError::invalid_action(other)),
        })
    }

    /// The resource the call acts on, as IAM's authorization reference
    /// names it: the user or role it names, the caller's own user for the
    /// calls that default to it, every resource for listings.
    pub fn target(&self, caller: &Principal) -> IamResult<Target> {
        Ok(match self {
            Self::CreateUser { user } | Self::DeleteUser { user } | Self::GetUser { user: Some(user) } => {
                Target::User(user.clone())
            }
            Self::GetUser { user: None } => Target::Caller,
            Self::CreateAccessKey { user } | Self::ListAccessKeys { user } | Self::DeleteAccessKey { user, .. } => {
                Target::User(key_owner(caller, user.as_deref())?)
            }
            Self::CreateRole(NewRole { name, .. }) => Target::Role(name.clone()),
            Self::GetRole { role } | Self::DeleteRole { role } => Target::Role(role.clone()),
            Self::PutPolicy { holder, .. }
            | Self::GetPolicy { holder, .. }
            | Self::ListPolicies { holder }
            | Self::DeletePolicy { holder, .. } => match holder {
                Holder::User(name) => Target::User(name.clone()),
                Holder::Role(name) => Target::Role(name.clone()),
            },
            Self::ListUsers | Self::ListRoles => Target::Any,
        })
    }

    /// Whether the call changes the directory (a follower catches up after forwarding it).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Self::GetUser { .. }
                | Self::ListUsers
                | Self::ListAccessKeys { .. }
                | Self::GetRole { .. }
                | Self::ListRoles
                | Self::GetPolicy { .. }
                | Self::ListPolicies { .. }
        )
    }
}

/// What a call is authorized against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    User(String),
    Role(String),
    /// The caller's own identity (`GetUser` without a name).
    Caller,
    /// No single resource (`ListUsers`, `ListRoles`).
    Any,
}

/// The user an access-key call is about: the named one, else the caller.
pub(crate) fn key_owner(caller: &Principal, named: Option<&str>) -> IamResult<String> {
    if let Some(name) = named {
        return Ok(name.to_owned());
    }
    caller
        .arn
        .split_once(":user/")
        .map(|(_, n)| n.to_owned())
        .ok_or_else(|| IamError::validation("Tern's root credentials come from its configuration; name an IAM user."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn each_action_reads_only_its_own_parameters() {
        let caller = Principal::root("000000000000");
        let escalate =
            params(&[("UserName", "admin"), ("RoleName", "app-x"), ("PolicyName", "p"), ("PolicyDocument", "{}")]);
        let call = Call::parse("PutUserPolicy", &escalate).unwrap();
        assert_eq!(call.target(&caller).unwrap(), Target::User("admin".into()));
        let call = Call::parse("PutRolePolicy", &escalate).unwrap();
        assert_eq!(call.target(&caller).unwrap(), Target::Role("app-x".into()));
        let keys = params(&[("UserName", "other"), ("RoleName", "app-x")]);
        assert_eq!(
            Call::parse("CreateAccessKey", &keys).unwrap().target(&caller).unwrap(),
            Target::User("other".into())
        );
        assert_eq!(Call::parse("ListRoles", &keys).unwrap().target(&caller).unwrap(), Target::Any);
        assert!(Call::parse("TernSnapshot", &keys).is_err());
        assert!(
            Call::parse("CreateUser", &params(&[("RoleName", "x")])).is_err(),
            "a missing UserName is not replaced"
        );
    }
}
