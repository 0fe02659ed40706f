//! A bucket's replication configuration as Tern keeps it, and which rule
//! covers which version. The S3 layer parses it from S3's XML and plans the
//! outbox with it; the worker and `tern replication check` read it.

use serde::{Deserialize, Serialize};
use tern_store::{NewTask, NewVersion, ObjectAttrs, SseAlgorithm, VersionRecord};

/// One tag of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagPair {
    pub key: String,
    pub value: String,
}

/// A rule's filter in the form it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// V1: a rule-level `<Prefix>`.
    Legacy(String),
    /// V2 `<Filter/>`: every object.
    All,
    Prefix(String),
    Tag(TagPair),
    And {
        prefix: Option<String>,
        tags: Vec<TagPair>,
    },
}

impl Filter {
    /// The key prefix the filter requires (empty: any key).
    #[must_use]
    pub fn prefix(&self) -> &str {
        match self {
            Self::Legacy(p) | Self::Prefix(p) | Self::And { prefix: Some(p), .. } => p,
            _ => "",
        }
    }

    /// The tags the filter requires.
    #[must_use]
    pub fn tags(&self) -> &[TagPair] {
        match self {
            Self::Tag(t) => std::slice::from_ref(t),
            Self::And { tags, .. } => tags,
            _ => &[],
        }
    }

    /// Whether an object with this key and these tags is in the rule's scope.
    #[must_use]
    pub fn matches(&self, key: &str, tags: &[(String, String)]) -> bool {
        key.starts_with(self.prefix())
            && self.tags().iter().all(|t| tags.iter().any(|(k, v)| *k == t.key && *v == t.value))
    }
}

/// The destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The bucket's name (the ARN without `arn:aws:s3:::`).
    pub bucket: String,
    pub account: Option<String>,
    pub storage_class: Option<String>,
    pub replica_kms_key_id: Option<String>,
    pub replication_time_minutes: Option<i32>,
    pub metrics: Option<MetricsConfig>,
}

/// Enabled replication metrics, with the event threshold as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsConfig {
    pub threshold_minutes: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub priority: Option<i32>,
    pub enabled: bool,
    pub filter: Filter,
    /// `None` in the V1 schema (markers always replicate there).
    pub delete_markers: Option<bool>,
    pub existing_objects: Option<bool>,
    pub sse_kms_objects: Option<bool>,
    pub replica_modifications: Option<bool>,
    pub destination: Destination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    pub role: String,
    pub rules: Vec<Rule>,
}

/// What rules look at in a version.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub key: &'a str,
    pub tags: &'a [(String, String)],
    pub attrs: &'a ObjectAttrs,
    pub is_delete_marker: bool,
}

impl<'a> From<&'a NewVersion> for Candidate<'a> {
    fn from(v: &'a NewVersion) -> Self {
        Self { key: &v.key, tags: &v.tags, attrs: &v.attrs, is_delete_marker: v.is_delete_marker }
    }
}

impl<'a> From<&'a VersionRecord> for Candidate<'a> {
    fn from(v: &'a VersionRecord) -> Self {
        Self { key: &v.key, tags: &v.tags, attrs: &v.attrs, is_delete_marker: v.is_delete_marker }
    }
}

impl Rule {
    /// Whether the rule covers version `v` (filters, delete markers, the
    /// SSE-KMS opt-in).
    #[must_use]
    pub fn covers(&self, v: &Candidate<'_>) -> bool {
        let kind_ok = if v.is_delete_marker {
            self.delete_markers.unwrap_or(true) && self.filter.tags().is_empty()
        } else {
            v.attrs.encryption != Some(SseAlgorithm::AwsKms) || self.sse_kms_objects == Some(true)
        };
        self.enabled && kind_ok && self.filter.matches(v.key, v.tags)
    }
}

impl ReplicationConfig {
    /// One task per destination, from the highest-priority rule of `rules`
    /// (rules of this configuration) there.
    #[must_use]
    pub fn tasks_for<'r>(&self, rules: impl Iterator<Item = &'r Rule>) -> Vec<NewTask> {
        let mut chosen: Vec<&Rule> = Vec::new();
        for rule in rules {
            match chosen.iter_mut().find(|c| c.destination.bucket == rule.destination.bucket) {
                Some(current) if rule.priority > current.priority => *current = rule,
                Some(_) => {}
                None => chosen.push(rule),
            }
        }
        chosen
            .iter()
            .map(|r| NewTask {
                rule_id: r.id.clone(),
                destination: r.destination.bucket.clone(),
                role: self.role.clone(),
                replica_kms_key_id: r.destination.replica_kms_key_id.clone(),
                storage_class: r.destination.storage_class.clone(),
            })
            .collect()
    }

    /// The tasks a version a client wrote gets: one per destination of the
    /// rules that cover it.
    #[must_use]
    pub fn tasks_covering(&self, v: &Candidate<'_>) -> Vec<NewTask> {
        self.tasks_for(self.rules.iter().filter(|r| r.covers(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, priority: i32, destination: &str, filter: Filter) -> Rule {
        Rule {
            id: id.into(),
            priority: Some(priority),
            enabled: true,
            filter,
            delete_markers: Some(false),
            existing_objects: None,
            sse_kms_objects: None,
            replica_modifications: None,
            destination: Destination {
                bucket: destination.into(),
                account: None,
                storage_class: None,
                replica_kms_key_id: None,
                replication_time_minutes: None,
                metrics: None,
            },
        }
    }

    fn candidate<'a>(key: &'a str, attrs: &'a ObjectAttrs) -> Candidate<'a> {
        Candidate { key, tags: &[], attrs, is_delete_marker: false }
    }

    #[test]
    fn the_highest_priority_rule_per_destination_makes_the_task() {
        let config = ReplicationConfig {
            role: "arn:aws:iam::000000000000:role/r".into(),
            rules: vec![
                rule("low", 1, "dst", Filter::All),
                rule("high", 2, "dst", Filter::Prefix("docs/".into())),
                rule("other", 1, "elsewhere", Filter::Prefix("img/".into())),
            ],
        };
        let attrs = ObjectAttrs::default();
        let tasks = config.tasks_covering(&candidate("docs/a", &attrs));
        let chosen: Vec<_> = tasks.iter().map(|t| (t.rule_id.as_str(), t.destination.as_str())).collect();
        assert_eq!(chosen, [("high", "dst")]);
        assert_eq!(tasks[0].role, config.role);
        assert_eq!(config.tasks_covering(&candidate("img/a", &attrs)).len(), 2);
    }

    #[test]
    fn sse_kms_objects_and_delete_markers_need_their_opt_in() {
        let plain = rule("r", 1, "dst", Filter::All);
        let kms = ObjectAttrs { encryption: Some(SseAlgorithm::AwsKms), ..ObjectAttrs::default() };
        assert!(!plain.covers(&candidate("k", &kms)));
        assert!(Rule { sse_kms_objects: Some(true), ..plain.clone() }.covers(&candidate("k", &kms)));
        let attrs = ObjectAttrs::default();
        let marker = Candidate { is_delete_marker: true, ..candidate("k", &attrs) };
        assert!(!plain.covers(&marker));
        assert!(Rule { delete_markers: Some(true), ..plain.clone() }.covers(&marker));
        let tagged = Rule {
            delete_markers: Some(true),
            ..rule("t", 1, "dst", Filter::Tag(TagPair { key: "a".into(), value: "b".into() }))
        };
        assert!(!tagged.covers(&marker), "a tag filter never covers a delete marker");
    }
}
