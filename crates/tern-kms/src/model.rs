//! What a region stores about each key. Everything here is persisted as
//! JSON in the region's document store; key material only ever sealed
//! (see [`crate::store`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// An MRK primary scheduled for deletion while replicas still exist.
    PendingReplicaDeletion,
}

impl KeyState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::PendingReplicaDeletion => "PendingReplicaDeletion",
        }
    }

    #[must_use]
    pub fn is_pending_deletion(self) -> bool {
        matches!(self, Self::PendingDeletion | Self::PendingReplicaDeletion)
    }
}

/// One key in one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    /// Epoch seconds.
    pub created: f64,
    pub description: String,
    pub state: KeyState,
    pub deletion_date: Option<f64>,
    pub pending_window_days: Option<u32>,
    /// The key policy (`default`), as the caller wrote it.
    pub policy: String,
    pub tags: Vec<Tag>,
    pub grants: Vec<Grant>,
    /// An AWS managed key (`alias/aws/s3`): KeyManager AWS.
    pub managed: bool,
    /// Material versions, each sealed under this region's key-store key.
    pub materials: Vec<SealedMaterial>,
    /// For an MRK, owned by the primary and copied to every replica.
    pub shared: Shared,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedMaterial {
    pub version: u32,
    pub created: f64,
    #[serde(with = "crate::wire::base64_bytes")]
    pub sealed: Vec<u8>,
}

/// What the primary of an MRK decides for all its replicas.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shared {
    /// Grows with every change, so a stale copy never overwrites a newer one.
    pub generation: u64,
    pub multi_region: Option<MultiRegion>,
    pub rotation: Rotation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegion {
    pub primary_region: String,
    pub replica_regions: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rotation {
    pub enabled: bool,
    pub period_days: u32,
    pub next_date: Option<f64>,
    pub last_on_demand: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: String,
    pub tag_value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub token: String,
    pub name: Option<String>,
    pub created: f64,
    pub grantee: String,
    pub retiring: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<std::collections::BTreeMap<String, String>>,
}

impl Grant {
    /// Whether `caller` is this grant's grantee (as a user, role, or session).
    #[must_use]
    pub fn is_grantee(&self, caller: &crate::Caller) -> bool {
        let principal = &caller.principal;
        self.grantee == principal.arn || principal.session_arn.as_deref() == Some(self.grantee.as_str())
    }

    /// Whether `caller` is this grant's retiring principal.
    #[must_use]
    pub fn is_retiring_principal(&self, caller: &crate::Caller) -> bool {
        let principal = &caller.principal;
        self.retiring.as_deref().is_some_and(|r| r == principal.arn || principal.session_arn.as_deref() == Some(r))
    }

    /// Whether this grant's token is `token`, compared in constant time:
    /// the token is a bearer secret.
    #[must_use]
    pub fn has_token(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.token.as_bytes().ct_eq(token.as_bytes()))
    }
}

impl GrantConstraints {
    /// Whether a call with encryption context `actual` meets these constraints.
    #[must_use]
    pub fn hold_for(&self, actual: &std::collections::BTreeMap<String, String>) -> bool {
        self.encryption_context_equals.as_ref().is_none_or(|eq| eq == actual)
            && self
                .encryption_context_subset
                .as_ref()
                .is_none_or(|sub| sub.iter().all(|(k, v)| actual.get(k) == Some(v)))
    }

    /// Whether every context these constraints admit, `parent` admits too:
    /// a grant made through a grant may narrow its parent, never widen it.
    #[must_use]
    pub fn within(&self, parent: &Self) -> bool {
        let equals_ok = parent
            .encryption_context_equals
            .as_ref()
            .is_none_or(|p| self.encryption_context_equals.as_ref() == Some(p));
        let subset_ok = parent.encryption_context_subset.as_ref().is_none_or(|p| {
            let required =
                |own: &std::collections::BTreeMap<String, String>| p.iter().all(|(k, v)| own.get(k) == Some(v));
            self.encryption_context_equals.as_ref().is_some_and(required)
                || self.encryption_context_subset.as_ref().is_some_and(required)
        });
        equals_ok && subset_ok
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub target: String,
    pub created: f64,
    pub updated: f64,
}
