//! The deployment's identities: users with access keys, roles with trust
//! policies, and the inline policies of both. One [`Directory`] is the
//! whole IAM state; it is small, kept in memory, and versioned by a
//! generation that grows with every change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::policy::{Policy, Principal};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// `AIDA…`
    pub id: String,
    pub created: i64,
    /// Inline policies by name, as the caller wrote them.
    pub policies: BTreeMap<String, String>,
    pub access_keys: Vec<AccessKey>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA…`
    pub id: String,
    /// In memory only in plaintext (wiped when dropped); at rest and
    /// between regions sealed.
    pub secret: Zeroizing<String>,
    pub active: bool,
    pub created: i64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey").field("id", &self.id).field("active", &self.active).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    /// `AROA…`
    pub id: String,
    pub created: i64,
    pub description: String,
    pub trust_policy: String,
    pub max_session_seconds: i64,
    pub policies: BTreeMap<String, String>,
}

/// All of IAM.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    /// Names this line of directories: it changes only if the authority
    /// starts from scratch (or from a restored store), which is when a
    /// follower must accept a generation lower than its own.
    #[serde(default)]
    pub epoch: String,
    pub generation: u64,
    pub users: BTreeMap<String, User>,
    pub roles: BTreeMap<String, Role>,
}

/// Who an access key belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    User(&'a User),
}

impl Directory {
    /// The active key `id` and its user.
    #[must_use]
    pub fn access_key(&self, id: &str) -> Option<(&AccessKey, Owner<'_>)> {
        self.users
            .values()
            .find_map(|u| u.access_keys.iter().find(|k| k.id == id && k.active).map(|k| (k, Owner::User(u))))
    }

    /// Whether `arn` names an existing user or role (or an account root).
    #[must_use]
    pub fn principal_exists(&self, arn: &str) -> bool {
        if let Some((_, name)) = arn.split_once(":user/") {
            self.users.contains_key(name)
        } else if let Some((_, name)) = arn.split_once(":role/") {
            self.roles.contains_key(name)
        } else {
            true
        }
    }
}

/// Every identity's inline policies, parsed once when the directory
/// changes rather than on every request.
#[derive(Debug, Default)]
pub struct CompiledPolicies {
    users: HashMap<String, Arc<[Policy]>>,
    roles: HashMap<String, Arc<[Policy]>>,
}

/// Parses one identity's documents. A stored document that no longer parses
/// (written under older, looser rules) denies everything to its identity:
/// dropping it could drop a Deny.
fn compile(identity: &str, documents: &BTreeMap<String, String>) -> Arc<[Policy]> {
    documents
        .iter()
        .map(|(name, text)| {
            Policy::identity(text).unwrap_or_else(|e| {
                tracing::warn!(%identity, policy = %name, error = %e, "stored policy no longer parses; it denies everything");
                Policy::deny_all()
            })
        })
        .collect()
}

impl CompiledPolicies {
    /// Parses every inline policy of `directory`.
    #[must_use]
    pub fn of(directory: &Directory) -> Self {
        let users =
            directory.users.values().map(|u| (u.name.clone(), compile(&format!("user/{}", u.name), &u.policies)));
        let roles =
            directory.roles.values().map(|r| (r.name.clone(), compile(&format!("role/{}", r.name), &r.policies)));
        Self { users: users.collect(), roles: roles.collect() }
    }

    /// The inline policies that apply to `principal` (none for the root).
    #[must_use]
    pub fn of_principal(&self, principal: &Principal) -> Option<&Arc<[Policy]>> {
        let arn = principal.arn.as_str();
        match arn.split_once(":user/") {
            Some((_, name)) => self.users.get(name),
            None => self.roles.get(arn.split_once(":role/")?.1),
        }
    }
}
