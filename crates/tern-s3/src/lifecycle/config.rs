//! A bucket's lifecycle configuration: its rules as Tern applies them, read
//! from and written back to S3's XML in the form they were given, and
//! validated as S3 validates them.

use s3s::dto::{self, LifecycleRule, LifecycleRuleFilter};
use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};

use crate::error::malformed_xml as malformed;
use crate::wire::tag_pair as tag;

/// At most this many rules per bucket, as S3.
const MAX_RULES: usize = 1000;
const MAX_ID_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    pub noncurrent: Option<NoncurrentExpiration>,
    /// Days after initiation an incomplete multipart upload is aborted.
    pub abort_upload_days: Option<u32>,
}

/// Which objects a rule applies to, in the form the rule was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// The rule's own `<Prefix>` (S3's first form).
    RulePrefix(String),
    /// `<Filter>` with at most one condition, or `<And>` of several.
    Only(Conditions),
    And(Conditions),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub prefix: Option<String>,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    Days(u32),
    /// Midnight UTC, in milliseconds since the epoch.
    Date(i64),
    /// Remove delete markers that hide no version.
    ExpiredDeleteMarkers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    pub days: u32,
    /// The newest this many noncurrent versions are kept whatever their age.
    pub keep_newer: Option<u32>,
}

impl Filter {
    fn conditions(&self) -> Conditions {
        match self {
            Self::RulePrefix(prefix) => Conditions { prefix: Some(prefix.clone()), ..Conditions::default() },
            Self::Only(c) | Self::And(c) => c.clone(),
        }
    }

    /// The key prefix every object the rule covers starts with.
    #[must_use]
    pub fn prefix(&self) -> String {
        self.conditions().prefix.unwrap_or_default()
    }

    #[must_use]
    pub fn has_tags(&self) -> bool {
        !self.conditions().tags.is_empty()
    }

    /// Whether an object of `key`, `size` bytes and `tags` is covered.
    #[must_use]
    pub fn covers(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        let c = self.conditions();
        key.starts_with(c.prefix.as_deref().unwrap_or_default())
            && c.size_greater_than.is_none_or(|n| size > n)
            && c.size_less_than.is_none_or(|n| size < n)
            && c.tags.iter().all(|wanted| tags.contains(wanted))
    }
}

fn positive(days: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    days.map(|d| {
        u32::try_from(d)
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| s3_error!(InvalidArgument, "{what} must be a positive integer"))
    })
    .transpose()
}

fn size(bytes: Option<i64>) -> S3Result<Option<u64>> {
    bytes
        .map(|n| u64::try_from(n).map_err(|_| s3_error!(InvalidArgument, "Object size filters must not be negative")))
        .transpose()
}

fn conditions(and: &dto::LifecycleRuleAndOperator) -> S3Result<Conditions> {
    let tags = and.tags.iter().flatten().map(tag).collect::<S3Result<Vec<_>>>()?;
    Ok(Conditions {
        prefix: and.prefix.clone(),
        tags,
        size_greater_than: size(and.object_size_greater_than)?,
        size_less_than: size(and.object_size_less_than)?,
    })
}

fn filter(rule: &LifecycleRule) -> S3Result<Filter> {
    let Some(f) = &rule.filter else {
        // A rule without a filter applies by its own prefix (or to every object).
        return Ok(Filter::RulePrefix(rule.prefix.clone().unwrap_or_default()));
    };
    if rule.prefix.is_some() {
        return Err(malformed());
    }
    let LifecycleRuleFilter { and, object_size_greater_than, object_size_less_than, prefix, tag: one_tag, .. } = f;
    let given = [
        and.is_some(),
        object_size_greater_than.is_some(),
        object_size_less_than.is_some(),
        prefix.is_some(),
        one_tag.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(malformed());
    }
    let filter = match and {
        Some(and) => Filter::And(conditions(and)?),
        None => Filter::Only(Conditions {
            prefix: prefix.clone(),
            tags: one_tag.iter().map(tag).collect::<S3Result<_>>()?,
            size_greater_than: size(*object_size_greater_than)?,
            size_less_than: size(*object_size_less_than)?,
        }),
    };
    let c = filter.conditions();
    if let (Some(more), Some(less)) = (c.size_greater_than, c.size_less_than)
        && less <= more
    {
        return Err(s3_error!(InvalidRequest, "ObjectSizeLessThan must be greater than ObjectSizeGreaterThan"));
    }
    Ok(filter)
}

fn expiration(e: &dto::LifecycleExpiration, filter: &Filter) -> S3Result<Expiration> {
    let markers = e.expired_object_delete_marker == Some(true);
    match (e.days, &e.date, markers) {
        (Some(days), None, false) => {
            Ok(Expiration::Days(positive(Some(days), "'Days' for Expiration action")?.unwrap_or_default()))
        }
        (None, Some(date), false) => {
            let date = time::OffsetDateTime::from(date.clone());
            if date.time() != time::Time::MIDNIGHT || date.offset() != time::UtcOffset::UTC {
                return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT"));
            }
            Ok(Expiration::Date(i64::try_from(date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)))
        }
        (None, None, true) if filter.has_tags() => {
            Err(s3_error!(InvalidRequest, "ExpiredObjectDeleteMarker cannot be specified with tags."))
        }
        (None, None, true) => Ok(Expiration::ExpiredDeleteMarkers),
        _ => Err(malformed()),
    }
}

fn noncurrent(n: &dto::NoncurrentVersionExpiration) -> S3Result<NoncurrentExpiration> {
    let days = positive(n.noncurrent_days, "'NoncurrentDays' for NoncurrentVersionExpiration action")?
        .ok_or_else(malformed)?;
    let keep_newer = n
        .newer_noncurrent_versions
        .map(|k| u32::try_from(k).ok().filter(|k| (1..=100).contains(k)))
        .map(|k| k.ok_or_else(|| s3_error!(InvalidArgument, "NewerNoncurrentVersions must be between 1 and 100")))
        .transpose()?;
    Ok(NoncurrentExpiration { days, keep_newer })
}

fn rule(r: &LifecycleRule) -> S3Result<Rule> {
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions.as_ref().is_some_and(|t| !t.is_empty())
    {
        return Err(s3_error!(
            NotImplemented,
            "Tern keeps every object in the storage class it was written in: lifecycle transitions are not supported."
        ));
    }
    let enabled = match r.status.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        _ => return Err(malformed()),
    };
    let id = r.id.clone().unwrap_or_else(|| crate::body::base64_encode(&rand::random::<[u8; 12]>()));
    if id.len() > MAX_ID_LEN {
        return Err(s3_error!(InvalidArgument, "ID length should not exceed allowed limit of 255"));
    }
    let filter = filter(r)?;
    let abort_upload_days = r
        .abort_incomplete_multipart_upload
        .as_ref()
        .map(|a| {
            positive(a.days_after_initiation, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action")?
                .ok_or_else(malformed)
        })
        .transpose()?;
    if abort_upload_days.is_some() && filter.has_tags() {
        return Err(s3_error!(InvalidRequest, "AbortIncompleteMultipartUpload cannot be specified with Tags."));
    }
    let rule = Rule {
        id,
        enabled,
        expiration: r.expiration.as_ref().map(|e| expiration(e, &filter)).transpose()?,
        noncurrent: r.noncurrent_version_expiration.as_ref().map(noncurrent).transpose()?,
        abort_upload_days,
        filter,
    };
    if rule.expiration.is_none() && rule.noncurrent.is_none() && rule.abort_upload_days.is_none() {
        return Err(s3_error!(InvalidRequest, "At least one action needs to be specified in a rule"));
    }
    Ok(rule)
}

/// A configuration as S3 would accept it.
pub(crate) fn parse(config: &dto::BucketLifecycleConfiguration) -> S3Result<LifecycleConfig> {
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let rules = config.rules.iter().map(rule).collect::<S3Result<Vec<_>>>()?;
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(s3_error!(InvalidArgument, "Rule ID must be unique. Found same ID for more than one rule"));
    }
    Ok(LifecycleConfig { rules })
}

fn tag_dto((key, value): &(String, String)) -> dto::Tag {
    dto::Tag { key: Some(key.clone()), value: Some(value.clone()) }
}

fn filter_dto(filter: &Filter) -> (Option<String>, Option<LifecycleRuleFilter>) {
    match filter {
        Filter::RulePrefix(prefix) => (Some(prefix.clone()), None),
        Filter::Only(c) => (
            None,
            Some(LifecycleRuleFilter {
                prefix: c.prefix.clone(),
                tag: c.tags.first().map(tag_dto),
                object_size_greater_than: c.size_greater_than.and_then(|n| i64::try_from(n).ok()),
                object_size_less_than: c.size_less_than.and_then(|n| i64::try_from(n).ok()),
                ..Default::default()
            }),
        ),
        Filter::And(c) => (
            None,
            Some(LifecycleRuleFilter {
                and: Some(dto::LifecycleRuleAndOperator {
                    prefix: c.prefix.clone(),
                    tags: (!c.tags.is_empty()).then(|| c.tags.iter().map(tag_dto).collect()),
                    object_size_greater_than: c.size_greater_than.and_then(|n| i64::try_from(n).ok()),
                    object_size_less_than: c.size_less_than.and_then(|n| i64::try_from(n).ok()),
                }),
                ..Default::default()
            }),
        ),
    }
}

fn expiration_dto(e: Expiration) -> dto::LifecycleExpiration {
    match e {
        Expiration::Days(days) => dto::LifecycleExpiration { days: i32::try_from(days).ok(), ..Default::default() },
        Expiration::Date(ms) => dto::LifecycleExpiration {
            date: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok().map(Into::into),
            ..Default::default()
        },
        Expiration::ExpiredDeleteMarkers => {
            dto::LifecycleExpiration { expired_object_delete_marker: Some(true), ..Default::default() }
        }
    }
}

/// The rules as `GetBucketLifecycleConfiguration` returns them.
pub(crate) fn to_dto(config: &LifecycleConfig) -> Vec<LifecycleRule> {
    config
        .rules
        .iter()
        .map(|r| {
            let (prefix, filter) = filter_dto(&r.filter);
            LifecycleRule {
                id: Some(r.id.clone()),
                status: dto::ExpirationStatus::from(if r.enabled { "Enabled" } else { "Disabled" }.to_owned()),
                prefix,
                filter,
                expiration: r.expiration.map(expiration_dto),
                noncurrent_version_expiration: r.noncurrent.map(|n| dto::NoncurrentVersionExpiration {
                    noncurrent_days: i32::try_from(n.days).ok(),
                    newer_noncurrent_versions: n.keep_newer.and_then(|k| i32::try_from(k).ok()),
                }),
                abort_incomplete_multipart_upload: r
                    .abort_upload_days
                    .map(|d| dto::AbortIncompleteMultipartUpload { days_after_initiation: i32::try_from(d).ok() }),
                noncurrent_version_transitions: None,
                transitions: None,
            }
        })
        .collect()
}
