//! `tern audit`: the records of a trail that answer "who used this key,
//! when, from where", read as stored.

use std::path::Path;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::chain::claimed_tag;
use crate::files::{self, Line};

/// Which records to show; every field left `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A key ARN, or a key id (which matches the key in every region: a
    /// multi-region key is one id with an ARN per region).
    pub key: Option<String>,
    /// A user, role or session ARN; a role's ARN matches its sessions.
    pub principal: Option<String>,
    pub event: Option<String>,
    pub since: Option<OffsetDateTime>,
}

impl Filter {
    #[must_use]
    pub fn matches(&self, record: &Value) -> bool {
        let identity = &record["userIdentity"];
        let principal = self
            .principal
            .as_deref()
            .is_none_or(|arn| identity["arn"] == arn || identity["sessionContext"]["sessionIssuer"]["arn"] == arn);
        let key = self.key.as_deref().is_none_or(|key| {
            let resources = record["resources"].as_array().map(Vec::as_slice).unwrap_or_default();
            resources.iter().filter_map(|r| r["ARN"].as_str()).any(|arn| names_key(arn, key))
        });
        let event = self.event.as_deref().is_none_or(|name| record["eventName"] == name);
        let since = self.since.is_none_or(|since| {
            record["eventTime"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|t| t >= since)
        });
        principal && key && event && since
    }
}

fn names_key(arn: &str, key: &str) -> bool {
    arn == key || (!key.starts_with("arn:") && arn.strip_suffix(key).is_some_and(|head| head.ends_with(":key/")))
}

/// A stored record: its line as stored (no newline) and its reading.
#[derive(Debug, Clone)]
pub struct Stored {
    pub line: Vec<u8>,
    pub record: Value,
}

impl Stored {
    /// When it happened, as stored (RFC 3339 in UTC: sorts as text).
    #[must_use]
    pub fn time(&self) -> &str {
        self.record["eventTime"].as_str().unwrap_or_default()
    }
}

/// The records of the trail in `dir` that `filter` matches, oldest first.
/// Lines that are not records (headers, digests, a torn tail) are skipped.
///
/// # Errors
/// If a file cannot be read.
pub fn records(dir: &Path, filter: &Filter) -> std::io::Result<Vec<Stored>> {
    let mut found = Vec::new();
    for (_, path) in files::list(dir)? {
        let bytes = std::fs::read(&path)?;
        // Only complete lines: a torn tail (a crash, or an intruder's
        // append that `verify` would not see) is never shown as a record.
        for line in files::complete_lines(&bytes).split(|b| *b == b'\n') {
            if claimed_tag(line).is_none() || Line::classify(line) != Some(Line::Record) {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<Value>(line) else { continue };
            if filter.matches(&record) {
                found.push(Stored { line: line.to_vec(), record });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_documented() {
        let record = serde_json::json!({
            "eventName": "Decrypt", "eventTime": "2026-11-29T08:00:00Z",
            "userIdentity": {"arn": "arn:aws:sts::1:assumed-role/r/s",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}}},
            "resources": [{"ARN": "arn:aws:kms:eu-west-1:1:key/mrk-1"}],
        });
        let matches = |filter: Filter| filter.matches(&record);
        assert!(matches(Filter::default()));
        assert!(matches(Filter { principal: Some("arn:aws:iam::1:role/r".into()), ..Filter::default() }));
        assert!(!matches(Filter { principal: Some("arn:aws:iam::1:user/r".into()), ..Filter::default() }));
        assert!(matches(Filter { key: Some("mrk-1".into()), ..Filter::default() }));
        assert!(!matches(Filter { key: Some("rk-1".into()), ..Filter::default() }));
        assert!(matches(Filter { key: Some("arn:aws:kms:eu-west-1:1:key/mrk-1".into()), ..Filter::default() }));
        assert!(!matches(Filter { key: Some("arn:aws:kms:us-east-1:1:key/mrk-1".into()), ..Filter::default() }));
        assert!(!matches(Filter { event: Some("Encrypt".into()), ..Filter::default() }));
        let later = OffsetDateTime::parse("2026-11-29T09:00:00Z", &Rfc3339).unwrap();
        assert!(!matches(Filter { since: Some(later), ..Filter::default() }));
    }
}
