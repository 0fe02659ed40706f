//! The IAM query API (`Action=CreateUser&…`, version 2010-05-08): users,
//! access keys, roles and their inline policies. Each request is read into
//! a typed [`call::Call`] first; it is authorized against the resource that
//! call names, then run.

mod call;
mod policies;

use std::collections::BTreeMap;

use self::call::{Call, NewRole, Target, key_owner};
use crate::error::{IamError, IamResult};
use crate::model::{AccessKey, Role, User};
use crate::policy::{Policy, Principal, Request, RequestContext};
use crate::service::Iam;
use crate::xml::{element, iso8601, leaf, members, response};

pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// AWS's limit of access keys per user.
const MAX_KEYS: usize = 2;
/// Runs of a call whose change lost a race with another front-end.
const STALE_ATTEMPTS: u32 = 5;

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

impl Iam {
    fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.account)
    }

    fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    /// Answers one IAM request from `caller` with (HTTP status, XML body).
    /// A follower checks the request's form, then forwards it to the
    /// authority, which authorizes it as `caller`.
    pub async fn handle_iam(&self, caller: &Principal, params: &Params) -> (u16, Vec<u8>) {
        let answer = match self.authority_peer() {
            Some(peer) => self.forward(peer.as_ref(), caller, params).await,
            None => self.iam_call_current(caller, params).await.map(|body| (200, body.into_bytes())),
        };
        answer.unwrap_or_else(|e| {
            (e.status, crate::xml::error(NAMESPACE, e.code, &e.message, e.status < 500).into_bytes())
        })
    }

    async fn forward(
        &self,
        peer: &dyn crate::service::IamAuthority,
        caller: &Principal,
        params: &Params,
    ) -> IamResult<(u16, Vec<u8>)> {
        let call = Call::parse(required(params, "Action")?, params)?;
        let answer = peer
            .forward(caller, params)
            .await
            .map_err(|e| IamError::service_failure(format!("The IAM authority region is unreachable: {e}")))?;
        if call.is_write()
            && let Err(e) = self.refresh().await
        {
            tracing::warn!(error = %e, "IAM directory not refreshed after a change");
        }
        Ok(answer)
    }

    /// Runs the call at the authority; again, a few times, when another
    /// front-end of the region changed the directory under it, or once
    /// caught up when it was refused for something that may be a moment old.
    async fn iam_call_current(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        // Another front-end's change is seen by the next call here; without
        // the store, nothing is answered that may be out of date.
        self.reload().await?;
        let mut attempts = 1;
        loop {
            match self.iam_call(caller, params).await {
                Err(e) if attempts < STALE_ATTEMPTS && e.is_stale() => attempts += 1,
                Err(e)
                    if attempts == 1 && matches!(e.code, "AccessDenied" | "NoSuchEntity") && self.catch_up().await =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    async fn iam_call(&self, caller: &Principal, params: &Params) -> IamResult<String> {
        let action = required(params, "Action")?;
        let call = Call::parse(action, params)?;
        let resource = match call.target(caller)? {
            Target::User(name) => self.user_arn(&name),
            Target::Role(name) => self.role_arn(&name),
            Target::Caller => caller.arn.clone(),
            Target::Any => "*".to_owned(),
        };
        let context = RequestContext::of(caller);
        let request =
            Request { principal: caller, action: &format!("iam:{action}"), resource: &resource, context: &context };
        self.authorize(&request)?;
        let result = match call {
            Call::CreateUser { user } => Some(self.create_user(user).await?),
            Call::GetUser { user } => Some(self.get_user(caller, user.as_deref())?),
            Call::ListUsers => Some(self.list_users()),
            Call::DeleteUser { user } => self.delete_user(user).await.map(|()| None)?,
            Call::CreateAccessKey { user } => Some(self.create_access_key(key_owner(caller, user.as_deref())?).await?),
            Call::ListAccessKeys { user } => Some(self.list_access_keys(&key_owner(caller, user.as_deref())?)?),
            Call::DeleteAccessKey { user, key_id } => {
                self.delete_access_key(key_owner(caller, user.as_deref())?, key_id).await.map(|()| None)?
            }
            Call::CreateRole(role) => Some(self.create_role(role).await?),
            Call::GetRole { role } => Some(self.get_role(&role)?),
            Call::ListRoles => Some(self.list_roles()),
            Call::DeleteRole { role } => self.delete_role(role).await.map(|()| None)?,
            Call::PutPolicy { holder, name, document } => {
                self.put_policy(holder, name, document).await.map(|()| None)?
            }
            Call::GetPolicy { holder, name } => Some(self.get_policy(&holder, &name)?),
            Call::ListPolicies { holder } => Some(self.list_policies(&holder)?),
            Call::DeletePolicy { holder, name } => self.delete_policy(holder, name).await.map(|()| None)?,
        };
        Ok(response(action, NAMESPACE, result.as_deref()))
    }

    fn user_fields(&self, out: &mut String, user: &User) {
        leaf(out, "Path", "/");
        leaf(out, "UserName", &user.name);
        leaf(out, "UserId", &user.id);
        leaf(out, "Arn", &self.user_arn(&user.name));
        leaf(out, "CreateDate", &iso8601(user.created));
    }

    async fn create_user(&self, name: String) -> IamResult<String> {
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

    fn get_user(&self, caller: &Principal, named: Option<&str>) -> IamResult<String> {
        let mut out = String::new();
        let Some(name) = named.or_else(|| caller.arn.split_once(":user/").map(|(_, n)| n)) else {
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

    async fn delete_user(&self, name: String) -> IamResult<()> {
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

    async fn create_access_key(&self, name: String) -> IamResult<String> {
        let key = self
            .update(|d| {
                let user = d.users.get_mut(&name).ok_or_else(|| no_user(&name))?;
                if user.access_keys.len() >= MAX_KEYS {
                    return Err(IamError::limit_exceeded("Cannot exceed quota for AccessKeysPerUser: 2"));
                }
                let key = AccessKey {
                    id: random_id("AKIA", 16),
                    secret: zeroize::Zeroizing::new(random_secret()),
                    active: true,
                    created: now(),
                };
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

    fn list_access_keys(&self, name: &str) -> IamResult<String> {
        let directory = self.directory();
        let user = directory.users.get(name).ok_or_else(|| no_user(name))?;
        let mut out = String::new();
        members(&mut out, "AccessKeyMetadata", &user.access_keys, |out, key| {
            leaf(out, "UserName", name);
            leaf(out, "AccessKeyId", &key.id);
            leaf(out, "Status", if key.active { "Active" } else { "Inactive" });
            leaf(out, "CreateDate", &iso8601(key.created));
        });
        Ok(out)
    }

    async fn delete_access_key(&self, name: String, id: String) -> IamResult<()> {
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

    async fn create_role(&self, new: NewRole) -> IamResult<String> {
        let NewRole { name, trust, max_session, description } = new;
        check_name("roleName", &name, 64)?;
        policies::check_trust_size(&trust)?;
        let max_session =
            match max_session {
                Some(v) => v.parse::<i64>().ok().filter(|s| (3600..=43_200).contains(s)).ok_or_else(|| {
                    IamError::validation("MaxSessionDuration must be between 3600 and 43200 seconds.")
                })?,
                None => 3600,
            };
        let role = self
            .update(|d| {
                policies::checked_policy(d, &trust, Policy::trust)?;
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

    fn get_role(&self, name: &str) -> IamResult<String> {
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

    async fn delete_role(&self, name: String) -> IamResult<()> {
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
}

pub(crate) fn no_user(name: &str) -> IamError {
    IamError::no_such_entity(format!("The user with name {name} cannot be found."))
}

pub(crate) fn no_role(name: &str) -> IamError {
    IamError::no_such_entity(format!("The role with name {name} cannot be found."))
}
