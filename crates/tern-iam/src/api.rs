//! The IAM query API (`Action=CreateUser&…`, version 2010-05-08): users,
//! access keys, roles and their inline policies.

use std::collections::BTreeMap;

use crate::error::{IamError, IamResult};
use crate::model::{AccessKey, Directory, Role, User};
use crate::policy::{Policy, Principal, Request, RequestContext};
use crate::service::Iam;
use crate::xml::{element, iso8601, leaf, members, response};

pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// AWS's limit of access keys per user.
const MAX_KEYS: usize = 2;

/// Request parameters, as the query protocol's form body carries them.
pub type Params = [(String, String)];

pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(crate) fn required<'a>(params: &'a Params, name: &str) -> IamResult<&'a str> {
    param(params, name).ok_or_else(|| IamError::missing(&lower_first(name)))
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

fn check_name(field: &str, name: &str, max: usize) -> IamResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\w+=,.@-]+"
        )))
    }
}

pub(crate) fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = vec![0u8; len];
    tern_crypto::fill_random(&mut bytes).expect("system random generator");
    let tail: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
    format!("{prefix}{tail}")
}

pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 30];
    tern_crypto::fill_random(&mut bytes).expect("system random generator");
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes).replace(['+', '/'], "A")
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Actions that change the directory (a follower refreshes after forwarding them).
#[must_use]
pub fn is_write(action: &str) -> bool {
    ["Create", "Delete", "Put", "Update", "Attach", "Detach"].iter().any(|p| action.starts_with(p))
}

impl Iam {
    fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.account)
    }

    fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    /// Answers one IAM request from `caller` with (HTTP status, XML body).
    /// A follower forwards it to the authority.
    pub async fn handle_iam(&self, caller: &Principal, params: &Params) -> (u16, String) {
        if let Some(peer) = self.authority_peer() {
            let answer = peer.forward(caller, params).await;
            if param(params, "Action").is_some_and(is_write)
                && let Err(e) = self.refresh().await
            {
                tracing::warn!(error = %e, "IAM directory not refreshed after a change");
            }
            return answer.unwrap_or_else(|e| {
                let e = IamError::service_failure(format!("The IAM authority region is unreachable: {e}"));
                (e.status, crate::xml::error(NAMESPACE, e.code, &e.message, false))
            });
        }
        match self.iam_call(caller, params).await {
            Ok(body) => (200, body),
            Err(e) => (e.status, crate::xml::error(NAMESPACE, e.code, &e.message, e.status < 500)),
        }
    }

    async fn iam_call(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        let action = required(params, "Action")?;
        let resource = self.target_arn(caller, params);
        let context = RequestContext::default();
        let request =
            Request { principal: caller, action: &format!("iam:{action}"), resource: &resource, context: &context };
        self.authorize(&request).map_err(IamError::access_denied)?;
        let result = match action {
            "CreateUser" => Some(self.create_user(params).await?),
            "GetUser" => Some(self.get_user(caller, params)?),
            "ListUsers" => Some(self.list_users()),
            "DeleteUser" => self.delete_user(params).await.map(|()| None)?,
            "CreateAccessKey" => Some(self.create_access_key(caller, params).await?),
            "ListAccessKeys" => Some(self.list_access_keys(caller, params)?),
            "DeleteAccessKey" => self.delete_access_key(caller, params).await.map(|()| None)?,
            "CreateRole" => Some(self.create_role(params).await?),
            "GetRole" => Some(self.get_role(params)?),
            "ListRoles" => Some(self.list_roles()),
            "DeleteRole" => self.delete_role(params).await.map(|()| None)?,
            "PutUserPolicy" | "PutRolePolicy" => self.put_policy(action, params).await.map(|()| None)?,
            "GetUserPolicy" | "GetRolePolicy" => Some(self.get_policy(action, params)?),
            "ListUserPolicies" | "ListRolePolicies" => Some(self.list_policies(action, params)?),
            "DeleteUserPolicy" | "DeleteRolePolicy" => self.delete_policy(action, params).await.map(|()| None)?,
            other => return Err(IamError::invalid_action(other)),
        };
        Ok(response(action, NAMESPACE, result.as_deref()))
    }

    /// The ARN an action acts on, for authorization.
    fn target_arn(&self, caller: &Principal, params: &Params) -> String {
        if let Some(role) = param(params, "RoleName") {
            self.role_arn(role)
        } else if let Some(user) = param(params, "UserName") {
            self.user_arn(user)
        } else if param(params, "Action").is_some_and(|a| a.starts_with("List") && !a.contains("AccessKeys")) {
            "*".to_owned()
        } else {
            caller.arn.clone()
        }
    }

    /// The user an access-key call is about: the named one, else the caller.
    fn key_owner(caller: &Principal, params: &Params) -> IamResult<String> {
        if let Some(name) = param(params, "UserName") {
            return Ok(name.to_owned());
        }
        caller.arn.split_once(":user/").map(|(_, n)| n.to_owned()).ok_or_else(|| {
            IamError::validation("Tern's root credentials come from its configuration; name an IAM user.")
        })
    }

    fn user_fields(&self, out: &mut String, user: &User) {
        leaf(out, "Path", "/");
        leaf(out, "UserName", &user.name);
        leaf(out, "UserId", &user.id);
        leaf(out, "Arn", &self.user_arn(&user.name));
        leaf(out, "CreateDate", &iso8601(user.created));
    }

    async fn create_user(&self, params: &Params) -> IamResult<String> {
        let name = required(params, "UserName")?.to_owned();
        check_name("userName", &name, 64)?;
        let user = self
            .update(|d| {
                if d.users.contains_key(&name) {
                    return Err(IamError::already_exists(format!("User with name {name} already exists.")));
                }
                let user = User {
                    name: name.clone(),
                    id: random_id("AIDA", 17),
                    created: now(),
                    policies: BTreeMap::new(),
                    access_keys: Vec::new(),
                };
                d.users.insert(name.clone(), user.clone());
                Ok(user)
            })
            .await?;
        let mut out = String::new();
        element(&mut out, "User", |out| self.user_fields(out, &user));
        Ok(out)
    }

    fn get_user(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        let mut out = String::new();
        let Some(name) = param(params, "UserName").or_else(|| caller.arn.split_once(":user/").map(|(_, n)| n)) else {
            element(&mut out, "User", |out| {
                leaf(out, "UserId", &self.account);
                leaf(out, "Arn", &caller.arn);
                leaf(out, "CreateDate", &iso8601(0));
            });
            return Ok(out);
        };
        let directory = self.directory();
        let user = directory.users.get(name).ok_or_else(|| no_user(name))?;
        element(&mut out, "User", |out| self.user_fields(out, user));
        Ok(out)
    }

    fn list_users(&self) -> String {
        let mut out = String::new();
        members(&mut out, "Users", self.directory().users.values(), |out, user| self.user_fields(out, user));
        out
    }

    async fn delete_user(&self, params: &Params) -> IamResult<()> {
        let name = required(params, "UserName")?.to_owned();
        self.update(|d| {
            let user = d.users.get(&name).ok_or_else(|| no_user(&name))?;
            if !user.access_keys.is_empty() {
                return Err(IamError::delete_conflict("Cannot delete entity, must delete access keys first."));
            }
            if !user.policies.is_empty() {
                return Err(IamError::delete_conflict("Cannot delete entity, must delete policies first."));
            }
            d.users.remove(&name);
            Ok(())
        })
        .await
    }

    async fn create_access_key(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        let name = Self::key_owner(caller, params)?;
        let key = self
            .update(|d| {
                let user = d.users.get_mut(&name).ok_or_else(|| no_user(&name))?;
                if user.access_keys.len() >= MAX_KEYS {
                    return Err(IamError::limit_exceeded("Cannot exceed quota for AccessKeysPerUser: 2"));
                }
                let key =
                    AccessKey { id: random_id("AKIA", 16), secret: random_secret(), active: true, created: now() };
                user.access_keys.push(key.clone());
                Ok(key)
            })
            .await?;
        let mut out = String::new();
        element(&mut out, "AccessKey", |out| {
            leaf(out, "UserName", &name);
            leaf(out, "AccessKeyId", &key.id);
            leaf(out, "Status", "Active");
            leaf(out, "SecretAccessKey", &key.secret);
            leaf(out, "CreateDate", &iso8601(key.created));
        });
        Ok(out)
    }

    fn list_access_keys(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        let name = Self::key_owner(caller, params)?;
        let directory = self.directory();
        let user = directory.users.get(&name).ok_or_else(|| no_user(&name))?;
        let mut out = String::new();
        members(&mut out, "AccessKeyMetadata", &user.access_keys, |out, key| {
            leaf(out, "UserName", &name);
            leaf(out, "AccessKeyId", &key.id);
            leaf(out, "Status", if key.active { "Active" } else { "Inactive" });
            leaf(out, "CreateDate", &iso8601(key.created));
        });
        Ok(out)
    }

    async fn delete_access_key(&self, caller: &Principal, params: &Params) -> IamResult<()> {
        let name = Self::key_owner(caller, params)?;
        let id = required(params, "AccessKeyId")?.to_owned();
        self.update(|d| {
            let user = d.users.get_mut(&name).ok_or_else(|| no_user(&name))?;
            let before = user.access_keys.len();
            user.access_keys.retain(|k| k.id != id);
            if user.access_keys.len() == before {
                return Err(IamError::no_such_entity(format!("The Access Key with id {id} cannot be found.")));
            }
            Ok(())
        })
        .await
    }

    fn role_xml(&self, out: &mut String, role: &Role) {
        leaf(out, "Path", "/");
        leaf(out, "RoleName", &role.name);
        leaf(out, "RoleId", &role.id);
        leaf(out, "Arn", &self.role_arn(&role.name));
        leaf(out, "CreateDate", &iso8601(role.created));
        leaf(out, "AssumeRolePolicyDocument", &urlencoding::encode(&role.trust_policy));
        if !role.description.is_empty() {
            leaf(out, "Description", &role.description);
        }
        leaf(out, "MaxSessionDuration", &role.max_session_seconds.to_string());
    }

    /// Parses a policy and refuses principals that do not exist, as AWS does.
    fn checked_policy(
        directory: &Directory,
        text: &str,
        parse: fn(&str) -> Result<Policy, crate::policy::PolicyError>,
    ) -> IamResult<()> {
        let policy = parse(text).map_err(|e| IamError::malformed_policy(e.0))?;
        if let Some(missing) = policy.named_principals().into_iter().find(|p| !directory.principal_exists(p)) {
            return Err(IamError::malformed_policy(format!("Invalid principal in policy: \"AWS\":\"{missing}\"")));
        }
        Ok(())
    }

    async fn create_role(&self, params: &Params) -> IamResult<String> {
        let name = required(params, "RoleName")?.to_owned();
        check_name("roleName", &name, 64)?;
        let trust = required(params, "AssumeRolePolicyDocument")?.to_owned();
        let max_session =
            match param(params, "MaxSessionDuration") {
                Some(v) => v.parse::<i64>().ok().filter(|s| (3600..=43_200).contains(s)).ok_or_else(|| {
                    IamError::validation("MaxSessionDuration must be between 3600 and 43200 seconds.")
                })?,
                None => 3600,
            };
        let description = param(params, "Description").unwrap_or_default().to_owned();
        let role = self
            .update(|d| {
                Self::checked_policy(d, &trust, Policy::trust)?;
                if d.roles.contains_key(&name) {
                    return Err(IamError::already_exists(format!("Role with name {name} already exists.")));
                }
                let role = Role {
                    name: name.clone(),
                    id: random_id("AROA", 17),
                    created: now(),
                    description,
                    trust_policy: trust,
                    max_session_seconds: max_session,
                    policies: BTreeMap::new(),
                };
                d.roles.insert(name.clone(), role.clone());
                Ok(role)
            })
            .await?;
        let mut out = String::new();
        element(&mut out, "Role", |out| self.role_xml(out, &role));
        Ok(out)
    }

    fn get_role(&self, params: &Params) -> IamResult<String> {
        let name = required(params, "RoleName")?;
        let directory = self.directory();
        let role = directory.roles.get(name).ok_or_else(|| no_role(name))?;
        let mut out = String::new();
        element(&mut out, "Role", |out| self.role_xml(out, role));
        Ok(out)
    }

    fn list_roles(&self) -> String {
        let mut out = String::new();
        members(&mut out, "Roles", self.directory().roles.values(), |out, role| self.role_xml(out, role));
        out
    }

    async fn delete_role(&self, params: &Params) -> IamResult<()> {
        let name = required(params, "RoleName")?.to_owned();
        self.update(|d| {
            let role = d.roles.get(&name).ok_or_else(|| no_role(&name))?;
            if !role.policies.is_empty() {
                return Err(IamError::delete_conflict("Cannot delete entity, must delete policies first."));
            }
            d.roles.remove(&name);
            Ok(())
        })
        .await
    }

    async fn put_policy(&self, action: &str, params: &Params) -> IamResult<()> {
        let holder = Holder::of(action, params)?;
        let policy_name = required(params, "PolicyName")?.to_owned();
        check_name("policyName", &policy_name, 128)?;
        let document = required(params, "PolicyDocument")?.to_owned();
        self.update(|d| {
            Self::checked_policy(d, &document, Policy::identity)?;
            holder.policies_mut(d)?.insert(policy_name, document);
            Ok(())
        })
        .await
    }

    fn get_policy(&self, action: &str, params: &Params) -> IamResult<String> {
        let holder = Holder::of(action, params)?;
        let policy_name = required(params, "PolicyName")?;
        let directory = self.directory();
        let document = holder.policies(&directory)?.get(policy_name).ok_or_else(|| {
            IamError::no_such_entity(format!("The {} policy with name {policy_name} cannot be found.", holder.noun()))
        })?;
        let mut out = String::new();
        leaf(&mut out, holder.name_field(), holder.name());
        leaf(&mut out, "PolicyName", policy_name);
        leaf(&mut out, "PolicyDocument", &urlencoding::encode(document));
        Ok(out)
    }

    fn list_policies(&self, action: &str, params: &Params) -> IamResult<String> {
        let holder = Holder::of(action, params)?;
        let directory = self.directory();
        let names: Vec<String> = holder.policies(&directory)?.keys().cloned().collect();
        let mut out = String::new();
        element(&mut out, "PolicyNames", |out| names.iter().for_each(|n| leaf(out, "member", n)));
        leaf(&mut out, "IsTruncated", "false");
        Ok(out)
    }

    async fn delete_policy(&self, action: &str, params: &Params) -> IamResult<()> {
        let holder = Holder::of(action, params)?;
        let policy_name = required(params, "PolicyName")?.to_owned();
        self.update(|d| {
            holder.policies_mut(d)?.remove(&policy_name).map(|_| ()).ok_or_else(|| {
                IamError::no_such_entity(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    holder.noun()
                ))
            })
        })
        .await
    }
}

fn no_user(name: &str) -> IamError {
    IamError::no_such_entity(format!("The user with name {name} cannot be found."))
}

fn no_role(name: &str) -> IamError {
    IamError::no_such_entity(format!("The role with name {name} cannot be found."))
}

/// The user or role whose inline policies a call is about.
enum Holder {
    User(String),
    Role(String),
}

impl Holder {
    fn of(action: &str, params: &Params) -> IamResult<Self> {
        if action.contains("Role") {
            Ok(Self::Role(required(params, "RoleName")?.to_owned()))
        } else {
            Ok(Self::User(required(params, "UserName")?.to_owned()))
        }
    }

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
}
