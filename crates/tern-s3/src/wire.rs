//! Conversions between the store's records and s3s's wire types, and the
//! small AWS rules about them (metadata size, tags, storage classes).

use s3s::dto::{ETag, Owner, StorageClass, Timestamp};
use s3s::{S3Result, s3_error};

pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    let nanos = i128::from(ms) * 1_000_000;
    Timestamp::from(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH))
}

pub(crate) fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

/// Version ids are 32 URL-safe characters, like AWS's.
pub(crate) fn new_version_id() -> String {
    use rand::RngExt as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::rng();
    (0..32).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

pub(crate) fn owner(account_id: &str) -> Owner {
    Owner { display_name: Some("tern".into()), id: Some(account_id.to_owned()) }
}

/// AWS caps user metadata at 2 KB: the sum of the UTF-8 lengths of every
/// `x-amz-meta-` key (without the prefix) and value.
pub(crate) fn check_user_metadata(metadata: Option<&s3s::dto::Metadata>) -> S3Result<()> {
    let size: usize = metadata.into_iter().flatten().map(|(k, v)| k.len() + v.len()).sum();
    if size > 2048 {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size ({size} > 2048 bytes)"
        ));
    }
    Ok(())
}

/// The storage classes Tern stores objects in: all of S3's whose objects
/// are read at once. STANDARD is stored as no class, as S3 reports it.
pub(crate) const STORAGE_CLASSES: [&str; 6] =
    ["STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"];

/// A write's storage class. The archival classes (GLACIER, `DEEP_ARCHIVE`)
/// need `RestoreObject` before a read, which Tern does not serve, so they are
/// refused at the door rather than accepted and left unreadable.
pub(crate) fn storage_class(class: Option<&StorageClass>) -> S3Result<Option<String>> {
    match class.map(StorageClass::as_str) {
        None | Some("STANDARD") => Ok(None),
        Some(c) if STORAGE_CLASSES.contains(&c) => Ok(Some(c.to_owned())),
        Some(c @ ("GLACIER" | "DEEP_ARCHIVE")) => Err(s3_error!(
            InvalidStorageClass,
            "The storage class you specified is not valid: {c} objects need RestoreObject, which Tern does not serve"
        )),
        Some(_) => Err(s3_error!(InvalidStorageClass, "The storage class you specified is not valid")),
    }
}

/// A tag of a configuration document (replication or lifecycle filters):
/// both key and value, or the document is malformed.
pub(crate) fn tag_pair(t: &s3s::dto::Tag) -> S3Result<(String, String)> {
    match (&t.key, &t.value) {
        (Some(key), Some(value)) => Ok((key.clone(), value.clone())),
        _ => Err(crate::error::malformed_xml()),
    }
}

/// Parses the `x-amz-tagging` header (a URL query string).
pub(crate) fn parse_tagging_header(header: &str) -> S3Result<Vec<(String, String)>> {
    let mut tags = Vec::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            urlencoding::decode(&s.replace('+', " "))
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| s3_error!(InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
        };
        tags.push((decode(k)?, decode(v)?));
    }
    validate_tags(&tags)?;
    Ok(tags)
}

/// `x-amz-server-side-encryption` as s3s carries it.
pub(crate) fn sse_dto(algorithm: Option<tern_store::SseAlgorithm>) -> Option<s3s::dto::ServerSideEncryption> {
    algorithm.map(|a| s3s::dto::ServerSideEncryption::from(a.as_str().to_owned()))
}

/// AWS's object tag rules: at most 10, unique keys of 1–128 chars, values ≤ 256.
pub(crate) fn validate_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than 10"));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagKey or TagValue you have provided is too long or empty"));
        }
        if k.starts_with("aws:") {
            return Err(s3_error!(InvalidTag, "Your TagKey cannot be prefixed with aws:"));
        }
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(s3_error!(InvalidTag, "The TagKey or TagValue you have provided is invalid"));
        }
        if !seen.insert(k) {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// `ObjectAttrs` from any input with the standard content fields
/// (`PutObject`, `CopyObject` with REPLACE, `CreateMultipartUpload`), or
/// the error of the first that is invalid. A macro because s3s's inputs
/// share these fields but no trait.
macro_rules! attrs_from_input {
    ($input:expr) => {{
        let input = &$input;
        let metadata = $crate::wire::check_user_metadata(input.metadata.as_ref());
        match (metadata, $crate::wire::storage_class(input.storage_class.as_ref())) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(storage_class)) => Ok(tern_store::ObjectAttrs {
                content_type: input.content_type.as_ref().map(ToString::to_string),
                content_encoding: input.content_encoding.clone(),
                content_disposition: input.content_disposition.clone(),
                content_language: input.content_language.clone(),
                cache_control: input.cache_control.clone(),
                expires: input.expires.as_ref().map($crate::wire::http_date),
                website_redirect_location: input.website_redirect_location.clone(),
                storage_class,
                user_metadata: input.metadata.clone().unwrap_or_default().into_iter().collect(),
                checksum: None,
                parts_count: None,
                ..tern_store::ObjectAttrs::default()
            }),
        }
    }};
}
pub(crate) use attrs_from_input;

/// Fills the headers GET and HEAD share from a stored version.
macro_rules! fill_object_headers {
    ($out:expr, $record:expr, $customer:expr) => {{
        let record = &$record;
        let attrs = &record.attrs;
        $out.content_type = attrs.content_type.as_deref().and_then(|t| t.parse().ok());
        $out.content_encoding = attrs.content_encoding.clone();
        $out.content_disposition = attrs.content_disposition.clone();
        $out.content_language = attrs.content_language.clone();
        $out.cache_control = attrs.cache_control.clone();
        $out.expires = attrs.expires.as_deref().and_then($crate::wire::parse_http_date);
        $out.website_redirect_location = attrs.website_redirect_location.clone();
        $out.storage_class = attrs.storage_class.clone().map(s3s::dto::StorageClass::from);
        $out.metadata = Some(attrs.user_metadata.clone().into_iter().collect());
        $out.e_tag = Some($crate::wire::etag(&record.etag));
        $out.last_modified = Some($crate::wire::timestamp(record.modified_ms));
        $out.parts_count = attrs.parts_count.and_then(|n| i32::try_from(n).ok());
        $out.accept_ranges = Some("bytes".into());
        $crate::encryption::fill_sse!($out, attrs, $customer);
        $out.replication_status =
            attrs.replication_status.map(|s| s3s::dto::ReplicationStatus::from(s.as_str().to_owned()));
        $out.version_id = $crate::wire::reported_read_version(record);
    }};
}
pub(crate) use fill_object_headers;

/// The `x-amz-version-id` of a read: S3 names a null version `null` only in
/// a bucket that has had versioning.
pub(crate) fn reported_read_version(record: &tern_store::VersionRecord) -> Option<String> {
    let named = record.version_id != tern_store::NULL_VERSION
        || record.bucket_versioning != tern_store::Versioning::Unversioned;
    named.then(|| record.version_id.clone())
}

/// Copies a stored checksum into an output that has the five checksum fields.
macro_rules! fill_checksum {
    ($out:expr, $checksum:expr) => {{
        if let Some(c) = $checksum {
            let value = Some(c.value.clone());
            match c.algorithm.as_str() {
                "CRC32" => $out.checksum_crc32 = value,
                "CRC32C" => $out.checksum_crc32c = value,
                "SHA1" => $out.checksum_sha1 = value,
                "SHA256" => $out.checksum_sha256 = value,
                _ => $out.checksum_crc64nvme = value,
            }
        }
    }};
}
pub(crate) use fill_checksum;

/// `x-amz-checksum-type` for a stored checksum.
pub(crate) fn checksum_type(checksum: Option<&tern_store::StoredChecksum>) -> Option<s3s::dto::ChecksumType> {
    checksum.and_then(|c| c.kind.clone()).map(s3s::dto::ChecksumType::from)
}

pub(crate) fn http_date(ts: &Timestamp) -> String {
    let mut buf = Vec::new();
    let _ = ts.format(s3s::dto::TimestampFormat::HttpDate, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub(crate) fn parse_http_date(text: &str) -> Option<Timestamp> {
    Timestamp::parse(s3s::dto::TimestampFormat::HttpDate, text).ok()
}

/// Percent-encodes listing fields when the client asked for `encoding-type=url`.
/// A listing value as S3 sends it under `encoding-type=url`: form encoding
/// (space as `+`, all but `A-Za-z0-9*-._` escaped) with `/` left as it is.
pub(crate) fn encode_if(url: bool, value: String) -> String {
    if !url {
        return value;
    }
    let segments: Vec<String> =
        value.split('/').map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect()).collect();
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_header_round_trip_and_limits() {
        let tags = parse_tagging_header("a=1&b%20c=d+e&empty=").unwrap();
        assert_eq!(tags, [("a".into(), "1".into()), ("b c".into(), "d e".into()), ("empty".into(), String::new())]);
        assert!(parse_tagging_header("a=1&a=2").is_err());
        let many = (0..11).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
        assert!(parse_tagging_header(&many).is_err());
        assert!(parse_tagging_header(&format!("{}=v", "k".repeat(129))).is_err());
    }

    #[test]
    fn listing_url_encoding_matches_s3() {
        assert_eq!(encode_if(true, "a b/c+d\n~é*(1).txt".into()), "a+b/c%2Bd%0A%7E%C3%A9*%281%29.txt");
        assert_eq!(encode_if(false, "a b".into()), "a b");
    }

    #[test]
    fn metadata_limit_is_two_kilobytes() {
        let mut m = s3s::dto::Metadata::new();
        m.insert("k".into(), "v".repeat(2047));
        assert!(check_user_metadata(Some(&m)).is_ok());
        m.insert("k2".into(), "v".into());
        assert_eq!(check_user_metadata(Some(&m)).unwrap_err().code().as_str(), "MetadataTooLarge");
    }

    #[test]
    fn version_ids_look_like_aws() {
        let id = new_version_id();
        assert_eq!(id.len(), 32);
        assert_ne!(id, new_version_id());
    }
}
