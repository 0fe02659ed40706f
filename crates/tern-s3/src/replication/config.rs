//! Replication configurations in S3's XML (V2, and the legacy V1 schema):
//! parsed and validated as AWS validates a document on its own, and
//! written back in the form they were put.

use s3s::dto::{self, ReplicationConfiguration, ReplicationRule};
use s3s::{S3Result, s3_error};
use tern_replication_model::{Destination, Filter, MetricsConfig, ReplicationConfig, Rule, TagPair};

use crate::error::malformed_xml as malformed;

const MAX_RULES: usize = 1000;

pub(super) fn invalid(message: &str) -> s3s::S3Error {
    s3_error!(InvalidRequest, "{message}")
}

/// `Enabled` / `Disabled`, refusing anything else as AWS's schema does.
fn status(value: &str) -> S3Result<bool> {
    match value {
        "Enabled" => Ok(true),
        "Disabled" => Ok(false),
        _ => Err(malformed()),
    }
}

fn tag(t: &dto::Tag) -> S3Result<TagPair> {
    crate::wire::tag_pair(t).map(|(key, value)| TagPair { key, value })
}

fn filter(rule: &ReplicationRule) -> S3Result<Filter> {
    let Some(f) = &rule.filter else {
        return Ok(Filter::Legacy(rule.prefix.clone().unwrap_or_default()));
    };
    if rule.prefix.is_some() {
        return Err(malformed());
    }
    match (&f.prefix, &f.tag, &f.and) {
        (None, None, None) => Ok(Filter::All),
        (Some(p), None, None) => Ok(Filter::Prefix(p.clone())),
        (None, Some(t), None) => Ok(Filter::Tag(tag(t)?)),
        (None, None, Some(and)) => {
            let tags = and.tags.iter().flatten().map(tag).collect::<S3Result<Vec<_>>>()?;
            if usize::from(and.prefix.is_some()) + tags.len() < 2 {
                return Err(malformed());
            }
            Ok(Filter::And { prefix: and.prefix.clone(), tags })
        }
        _ => Err(malformed()),
    }
}

fn destination(d: &dto::Destination) -> S3Result<Destination> {
    let bucket = d
        .bucket
        .strip_prefix("arn:aws:s3:::")
        .filter(|name| tern_core::names::is_valid_bucket_name(name))
        .ok_or_else(|| s3_error!(InvalidArgument, "Invalid bucket ARN: {}", d.bucket))?;
    let replication_time = d
        .replication_time
        .as_ref()
        .map(|t| Ok::<_, s3s::S3Error>((status(t.status.as_str())?, t.time.minutes)))
        .transpose()?;
    let metrics = d
        .metrics
        .as_ref()
        .map(|m| {
            Ok::<_, s3s::S3Error>((status(m.status.as_str())?, m.event_threshold.as_ref().and_then(|t| t.minutes)))
        })
        .transpose()?;
    if replication_time.is_some() != metrics.is_some() {
        return Err(invalid("Replication destination must contain both ReplicationTime and Metrics or neither."));
    }
    let fifteen = |minutes: Option<i32>| minutes.is_none_or(|m| m == 15);
    let replication_time_minutes = match replication_time {
        Some((true, minutes)) => {
            if !fifteen(minutes) {
                return Err(invalid("ReplicationTime Minutes must be 15."));
            }
            Some(15)
        }
        _ => None,
    };
    let metrics = match metrics {
        Some((true, threshold)) => {
            if !fifteen(threshold) {
                return Err(invalid("Metrics EventThreshold Minutes must be 15."));
            }
            Some(MetricsConfig { threshold_minutes: threshold })
        }
        _ => None,
    };
    // Replicas are stored as writes are: in the classes Tern serves.
    crate::wire::storage_class(d.storage_class.as_ref())?;
    Ok(Destination {
        bucket: bucket.to_owned(),
        account: d.account.clone(),
        storage_class: d.storage_class.as_ref().map(|c| c.as_str().to_owned()),
        replica_kms_key_id: d.encryption_configuration.as_ref().and_then(|e| e.replica_kms_key_id.clone()),
        replication_time_minutes,
        metrics,
    })
}

fn rule(r: &ReplicationRule, index: usize) -> S3Result<Rule> {
    let filter = filter(r)?;
    let v2 = !matches!(filter, Filter::Legacy(_));
    let delete_markers = match &r.delete_marker_replication {
        Some(d) => Some(status(d.status.as_ref().map_or("Disabled", |s| s.as_str()))?),
        None => None,
    };
    if v2 && r.priority.is_none() {
        return Err(invalid(
            "Priority must be specified for this version of Cross Region Replication configuration schema.",
        ));
    }
    if v2 && delete_markers.is_none() {
        return Err(invalid(
            "DeleteMarkerReplication must be specified for this version of Cross Region Replication configuration schema.",
        ));
    }
    if !v2 && (r.priority.is_some() || delete_markers.is_some()) {
        return Err(invalid(
            "Priority cannot be used for this version of Cross Region Replication configuration schema.",
        ));
    }
    if delete_markers == Some(true) && !filter.tags().is_empty() {
        return Err(invalid("Delete marker replication is not supported if any Tag filter is specified."));
    }
    let criteria = r.source_selection_criteria.as_ref();
    let sse_kms_objects =
        criteria.and_then(|c| c.sse_kms_encrypted_objects.as_ref()).map(|s| status(s.status.as_str())).transpose()?;
    let replica_modifications =
        criteria.and_then(|c| c.replica_modifications.as_ref()).map(|s| status(s.status.as_str())).transpose()?;
    let destination = destination(&r.destination)?;
    match (sse_kms_objects == Some(true), destination.replica_kms_key_id.is_some()) {
        (true, false) => {
            return Err(invalid("ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present."));
        }
        (false, true) => {
            return Err(invalid(
                "SseKmsEncryptedObjects must be specified if EncryptionConfiguration/ReplicaKmsKeyID is present.",
            ));
        }
        _ => {}
    }
    let id = match &r.id {
        Some(id) if id.chars().count() > 255 => return Err(s3_error!(InvalidArgument, "The ID is too long.")),
        Some(id) => id.clone(),
        None => format!("rule-{}", index + 1),
    };
    Ok(Rule {
        id,
        priority: r.priority,
        enabled: status(r.status.as_str())?,
        filter,
        delete_markers,
        existing_objects: r.existing_object_replication.as_ref().map(|e| status(e.status.as_str())).transpose()?,
        sse_kms_objects,
        replica_modifications,
        destination,
    })
}

/// Checks what concerns the rules together: unique ids, and unique
/// priorities among rules that share a destination.
fn check_rules(rules: &[Rule]) -> S3Result<()> {
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.id == b.id {
                return Err(s3_error!(InvalidArgument, "Rule Id must be unique. Found same ID for more than one rule"));
            }
            if a.priority.is_some() && a.priority == b.priority && a.destination.bucket == b.destination.bucket {
                return Err(invalid("Found overlapping rules with same priority"));
            }
        }
    }
    Ok(())
}

/// Parses and checks a configuration on its own (no lookups).
pub(super) fn parse(config: &ReplicationConfiguration) -> S3Result<ReplicationConfig> {
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let rules = config.rules.iter().enumerate().map(|(i, r)| rule(r, i)).collect::<S3Result<Vec<_>>>()?;
    check_rules(&rules)?;
    Ok(ReplicationConfig { role: config.role.clone(), rules })
}

fn status_dto<T: From<String>>(on: bool) -> T {
    T::from(if on { "Enabled" } else { "Disabled" }.to_owned())
}

fn tag_dto(t: &TagPair) -> dto::Tag {
    dto::Tag { key: Some(t.key.clone()), value: Some(t.value.clone()) }
}

/// The configuration as S3's XML shows it.
pub(super) fn to_dto(config: &ReplicationConfig) -> ReplicationConfiguration {
    ReplicationConfiguration { role: config.role.clone(), rules: config.rules.iter().map(rule_dto).collect() }
}

fn rule_dto(rule: &Rule) -> ReplicationRule {
    let (prefix, filter) = match &rule.filter {
        Filter::Legacy(p) => (Some(p.clone()), None),
        Filter::All => (None, Some(dto::ReplicationRuleFilter::default())),
        Filter::Prefix(p) => (None, Some(dto::ReplicationRuleFilter { prefix: Some(p.clone()), ..Default::default() })),
        Filter::Tag(t) => (None, Some(dto::ReplicationRuleFilter { tag: Some(tag_dto(t)), ..Default::default() })),
        Filter::And { prefix, tags } => (
            None,
            Some(dto::ReplicationRuleFilter {
                and: Some(dto::ReplicationRuleAndOperator {
                    prefix: prefix.clone(),
                    tags: Some(tags.iter().map(tag_dto).collect()),
                }),
                ..Default::default()
            }),
        ),
    };
    let criteria = (rule.sse_kms_objects.is_some() || rule.replica_modifications.is_some()).then(|| {
        dto::SourceSelectionCriteria {
            sse_kms_encrypted_objects: rule
                .sse_kms_objects
                .map(|on| dto::SseKmsEncryptedObjects { status: status_dto(on) }),
            replica_modifications: rule
                .replica_modifications
                .map(|on| dto::ReplicaModifications { status: status_dto(on) }),
        }
    });
    ReplicationRule {
        delete_marker_replication: rule
            .delete_markers
            .map(|on| dto::DeleteMarkerReplication { status: Some(status_dto(on)) }),
        destination: destination_dto(&rule.destination),
        existing_object_replication: rule
            .existing_objects
            .map(|on| dto::ExistingObjectReplication { status: status_dto(on) }),
        filter,
        id: Some(rule.id.clone()),
        prefix,
        priority: rule.priority,
        source_selection_criteria: criteria,
        status: status_dto(rule.enabled),
    }
}

fn destination_dto(destination: &Destination) -> dto::Destination {
    let fifteen = || dto::ReplicationTimeValue { minutes: Some(15) };
    dto::Destination {
        access_control_translation: None,
        account: destination.account.clone(),
        bucket: format!("arn:aws:s3:::{}", destination.bucket),
        encryption_configuration: destination
            .replica_kms_key_id
            .clone()
            .map(|id| dto::EncryptionConfiguration { replica_kms_key_id: Some(id) }),
        metrics: destination.metrics.map(|m| dto::Metrics {
            event_threshold: m.threshold_minutes.map(|minutes| dto::ReplicationTimeValue { minutes: Some(minutes) }),
            status: status_dto(true),
        }),
        replication_time: destination
            .replication_time_minutes
            .map(|_| dto::ReplicationTime { status: status_dto(true), time: fifteen() }),
        storage_class: destination.storage_class.clone().map(dto::StorageClass::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_dto(id: &str, priority: Option<i32>, filter: Option<dto::ReplicationRuleFilter>) -> ReplicationRule {
        ReplicationRule {
            delete_marker_replication: priority
                .map(|_| dto::DeleteMarkerReplication { status: Some(status_dto(false)) }),
            destination: dto::Destination { bucket: "arn:aws:s3:::dst".into(), ..Default::default() },
            existing_object_replication: None,
            filter,
            id: Some(id.into()),
            prefix: None,
            priority,
            source_selection_criteria: None,
            status: status_dto(true),
        }
    }

    fn config(rules: Vec<ReplicationRule>) -> ReplicationConfiguration {
        ReplicationConfiguration { role: "arn:aws:iam::000000000000:role/r".into(), rules }
    }

    fn code(result: S3Result<ReplicationConfig>) -> String {
        result.err().map(|e| e.code().as_str().to_owned()).unwrap_or_default()
    }

    #[test]
    fn documents_round_trip_in_the_form_they_were_written() {
        let prefix = dto::ReplicationRuleFilter { prefix: Some("docs/".into()), ..Default::default() };
        let put = config(vec![
            rule_dto("a", Some(1), Some(prefix)),
            rule_dto("b", Some(2), Some(dto::ReplicationRuleFilter::default())),
        ]);
        let parsed = parse(&put).unwrap();
        let again = ReplicationConfiguration { role: parsed.role.clone(), rules: to_dto(&parsed).rules };
        assert_eq!(parse(&again).unwrap(), parsed);
        assert_eq!(parsed.rules[0].filter, Filter::Prefix("docs/".into()));
        assert!(parsed.rules[0].filter.matches("docs/x", &[]) && !parsed.rules[0].filter.matches("img/x", &[]));
    }

    #[test]
    fn invalid_documents_get_aws_codes() {
        assert_eq!(
            code(parse(&config(vec![rule_dto("a", None, Some(dto::ReplicationRuleFilter::default()))]))),
            "InvalidRequest"
        );
        let both = dto::ReplicationRuleFilter {
            prefix: Some("p".into()),
            tag: Some(dto::Tag { key: Some("k".into()), value: Some("v".into()) }),
            ..Default::default()
        };
        assert_eq!(code(parse(&config(vec![rule_dto("a", Some(1), Some(both))]))), "MalformedXML");
        let lonely_and = dto::ReplicationRuleFilter {
            and: Some(dto::ReplicationRuleAndOperator { prefix: Some("p".into()), tags: None }),
            ..Default::default()
        };
        assert_eq!(code(parse(&config(vec![rule_dto("a", Some(1), Some(lonely_and))]))), "MalformedXML");
        let twins = vec![
            rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default())),
            rule_dto("b", Some(1), Some(dto::ReplicationRuleFilter::default())),
        ];
        assert_eq!(code(parse(&config(twins))), "InvalidRequest");
        let same_id = vec![
            rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default())),
            rule_dto("a", Some(2), Some(dto::ReplicationRuleFilter::default())),
        ];
        assert_eq!(code(parse(&config(same_id))), "InvalidArgument");
        let mut kms = rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default()));
        kms.source_selection_criteria = Some(dto::SourceSelectionCriteria {
            sse_kms_encrypted_objects: Some(dto::SseKmsEncryptedObjects { status: status_dto(true) }),
            replica_modifications: None,
        });
        assert_eq!(code(parse(&config(vec![kms]))), "InvalidRequest", "SseKmsEncryptedObjects needs ReplicaKmsKeyID");
        let mut bad_arn = rule_dto("a", Some(1), Some(dto::ReplicationRuleFilter::default()));
        bad_arn.destination.bucket = "dst".into();
        assert_eq!(code(parse(&config(vec![bad_arn]))), "InvalidArgument");
        assert_eq!(code(parse(&config(vec![]))), "MalformedXML");
    }
}
