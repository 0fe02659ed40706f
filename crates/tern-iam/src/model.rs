//! The deployment's identities: users with access keys, roles with trust
//! policies, and the inline policies of both. One [`Directory`] is the
//! whole IAM state; it is small, kept in memory, and versioned by a
//! generation that grows with every change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA…`
    pub id: String,
    /// In memory only in plaintext; at rest and between regions sealed.
    pub secret: String,
    pub active: bool,
    pub created: i64,
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

    /// The inline policies that apply to `principal` (none for the root).
    #[must_use]
    pub fn identity_policies(&self, principal: &Principal) -> Vec<Policy> {
        let documents = if let Some(name) = principal.arn.split_once(":user/").map(|(_, n)| n) {
            self.users.get(name).map(|u| &u.policies)
        } else if let Some(name) = principal.arn.split_once(":role/").map(|(_, n)| n) {
            self.roles.get(name).map(|r| &r.policies)
        } else {
            None
        };
        // Stored documents were validated when put; one that no longer parses grants nothing.
        documents.into_iter().flat_map(|d| d.values()).filter_map(|text| Policy::identity(text).ok()).collect()
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
