//! `SigV2` (S3's legacy HMAC-SHA1 scheme), checked before s3s sees the
//! request: s3s 0.14 accepts any request date and any presigned expiry, and
//! compares signatures with `==`. Here the date must be within the skew,
//! a presigned URL may live at most a week, and the signature is compared
//! in constant time, so s3s only ever re-checks a signature already known good.
//!
//! The string to sign is AWS's (`RESTAuthentication`), built exactly as
//! s3s builds it, so both agree on every request.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine as _;
use time::OffsetDateTime;

use crate::query::Query;
use crate::scope::MAX_PRESIGNED_SECONDS;
use crate::verify::MAX_SKEW_SECONDS;

/// Subresources that belong to the canonicalized resource, sorted.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// How a request carries a `SigV2` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed<'a> {
    /// `Authorization: AWS <access key>:<signature>`.
    Header { access_key: &'a str, signature: &'a str },
    /// `?AWSAccessKeyId=…&Expires=…&Signature=…`.
    Query { access_key: &'a str, signature: &'a str, expires: &'a str },
}

/// Why a `SigV2` request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    MissingDate,
    #[error("The difference between the request time and the current time is too large.")]
    Skewed,
    #[error("Expires must be a number of seconds since the epoch, less than a week (604800 seconds) from now")]
    ExpiryTooLong,
    #[error("Request has expired")]
    Expired,
    #[error("The request signature we calculated does not match the signature you provided.")]
    Mismatch,
}

impl<'a> Signed<'a> {
    /// The `SigV2` signature of a request, if it has one (s3s's precedence:
    /// a query signature first, then the header).
    #[must_use]
    pub fn of(authorization: Option<&'a str>, query: &'a Query) -> Option<Self> {
        if query.has("Signature") {
            return Some(Self::Query {
                access_key: query.unique("AWSAccessKeyId").unwrap_or_default(),
                signature: query.unique("Signature").unwrap_or_default(),
                expires: query.unique("Expires").unwrap_or_default(),
            });
        }
        let (access_key, signature) = authorization?.strip_prefix("AWS ")?.split_once(':')?;
        Some(Self::Header { access_key, signature })
    }

    #[must_use]
    pub fn access_key(&self) -> &'a str {
        match self {
            Self::Header { access_key, .. } | Self::Query { access_key, .. } => access_key,
        }
    }
}

/// The parts of a request a `SigV2` signature covers. Header names are lowercase.
#[derive(Debug, Clone, Copy)]
pub struct V2Request<'a> {
    pub method: &'a str,
    /// The path as sent on the wire.
    pub path: &'a str,
    pub query: &'a Query,
    pub headers: &'a [(&'a str, &'a str)],
}

impl V2Request<'_> {
    fn unique(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| *n == name);
        let (_, first) = values.next()?;
        values.next().is_none().then_some(*first)
    }
}

/// Checks a `SigV2` request's time at `now`: a header signature's date
/// within the skew, a presigned URL unexpired and valid for at most a week.
pub fn check_time(signed: &Signed<'_>, request: &V2Request<'_>, now: OffsetDateTime) -> Result<(), V2Error> {
    match signed {
        Signed::Header { .. } => {
            let date = request.unique("x-amz-date").or_else(|| request.unique("date")).ok_or(V2Error::MissingDate)?;
            let at = parse_http_date(date).ok_or(V2Error::MissingDate)?;
            if (now - at).whole_seconds().abs() > MAX_SKEW_SECONDS {
                return Err(V2Error::Skewed);
            }
        }
        Signed::Query { expires, .. } => {
            let expires: i64 = expires.parse().map_err(|_| V2Error::ExpiryTooLong)?;
            let left = expires - now.unix_timestamp();
            if left < 0 {
                return Err(V2Error::Expired);
            }
            // As for `SigV4`.
            if left > i64::from(MAX_PRESIGNED_SECONDS) {
                return Err(V2Error::ExpiryTooLong);
            }
        }
    }
    Ok(())
}

/// RFC 1123 dates as HTTP sends them (`GMT`) or with a numeric offset.
fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let rfc2822 = time::format_description::well_known::Rfc2822;
    OffsetDateTime::parse(text, &rfc2822)
        .ok()
        .or_else(|| OffsetDateTime::parse(&text.replace(" GMT", " +0000"), &rfc2822).ok())
}

/// The string a `SigV2` signature signs (see the module docs).
#[must_use]
pub fn string_to_sign(signed: &Signed<'_>, request: &V2Request<'_>) -> String {
    let mut out = String::with_capacity(256);
    for line in [request.method, request.unique("content-md5").unwrap_or_default()] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(request.unique("content-type").unwrap_or_default());
    out.push('\n');
    let date = match signed {
        Signed::Query { expires, .. } => expires,
        Signed::Header { .. } if request.unique("x-amz-date").is_some() => "",
        Signed::Header { .. } => request.unique("date").unwrap_or_default(),
    };
    out.push_str(date);
    out.push('\n');
    canonical_amz_headers(request, &mut out);
    out.push_str(request.path);
    let mut first = true;
    for name in SUBRESOURCES {
        let Some(value) = request.query.unique(name) else { continue };
        out.push(if std::mem::take(&mut first) { '?' } else { '&' });
        out.push_str(name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

/// `x-amz-*` headers sorted by name, each once, values trimmed and joined by commas.
fn canonical_amz_headers(request: &V2Request<'_>, out: &mut String) {
    let mut amz: Vec<(&str, &str)> =
        request.headers.iter().copied().filter(|(name, _)| name.starts_with("x-amz-")).collect();
    amz.sort_by_key(|(name, _)| *name);
    let mut previous = None;
    for (name, value) in amz {
        if previous == Some(name) {
            out.push(',');
        } else {
            if previous.is_some() {
                out.push('\n');
            }
            out.push_str(name);
            out.push(':');
            previous = Some(name);
        }
        out.push_str(value.trim());
    }
    if previous.is_some() {
        out.push('\n');
    }
}

/// Checks a `SigV2` signature against `secret`, in constant time.
pub fn verify(signed: &Signed<'_>, request: &V2Request<'_>, secret: &str) -> Result<(), V2Error> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac::sign(&key, string_to_sign(signed, request).as_bytes()).as_ref());
    let given = match signed {
        Signed::Header { signature, .. } | Signed::Query { signature, .. } => signature,
    };
    constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).map_err(|_| V2Error::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// AWS's own examples (Amazon S3 User Guide, "Authenticating requests (AWS signature version 2)").
    #[test]
    fn aws_documented_examples_verify() {
        let query = Query::default();
        let headers = [("date", "Tue, 27 Mar 2007 19:36:42 +0000"), ("host", "awsexamplebucket1.s3.amazonaws.com")];
        let get =
            V2Request { method: "GET", path: "/awsexamplebucket1/photos/puppy.jpg", query: &query, headers: &headers };
        let signed = Signed::Header { access_key: "AKIAIOSFODNN7EXAMPLE", signature: "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=" };
        assert_eq!(
            string_to_sign(&signed, &get),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        verify(&signed, &get, SECRET).unwrap();

        let headers =
            [("content-type", "image/jpeg"), ("content-length", "94328"), ("date", "Tue, 27 Mar 2007 21:15:45 +0000")];
        let put =
            V2Request { method: "PUT", path: "/awsexamplebucket1/photos/puppy.jpg", query: &query, headers: &headers };
        let signed = Signed::Header { access_key: "AKIAIOSFODNN7EXAMPLE", signature: "iqRzw+ileNPu1fhspnRs8nOjjIA=" };
        verify(&signed, &put, SECRET).unwrap();
        let forged = Signed::Header { access_key: "AKIAIOSFODNN7EXAMPLE", signature: "iqRzw+ileNPu1fhspnRs8nOjjIB=" };
        assert_eq!(verify(&forged, &put, SECRET), Err(V2Error::Mismatch));

        let query = Query::parse("versioning").unwrap();
        let headers = [
            ("x-amz-date", "Tue, 27 Mar 2007 19:44:46 +0000"),
            ("x-amz-meta-b", " 2 "),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "3"),
        ];
        let request = V2Request { method: "GET", path: "/b/", query: &query, headers: &headers };
        let signed = Signed::Header { access_key: "k", signature: "s" };
        assert_eq!(
            string_to_sign(&signed, &request),
            "GET\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:44:46 +0000\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n/b/?versioning"
        );
    }

    #[test]
    fn dates_must_be_recent_and_urls_short_lived() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let query = Query::default();
        let signed = Signed::Header { access_key: "k", signature: "s" };
        let at = |date: &'static str| [("date", date)];
        let fresh = at("Fri, 15 Jan 2027 08:00:00 GMT");
        let request = V2Request { method: "GET", path: "/", query: &query, headers: &fresh };
        assert_eq!(check_time(&signed, &request, now), Ok(()));
        let old = at("Mon, 01 Jan 2024 00:00:00 GMT");
        let request = V2Request { headers: &old, ..request };
        assert_eq!(check_time(&signed, &request, now), Err(V2Error::Skewed));
        let none: [(&str, &str); 0] = [];
        let request = V2Request { headers: &none, ..request };
        assert_eq!(check_time(&signed, &request, now), Err(V2Error::MissingDate));

        let presigned = |expires| Signed::Query { access_key: "k", signature: "s", expires };
        assert_eq!(check_time(&presigned("1800000600"), &request, now), Ok(()));
        assert_eq!(check_time(&presigned("2430720000"), &request, now), Err(V2Error::ExpiryTooLong));
        assert_eq!(check_time(&presigned("1799999999"), &request, now), Err(V2Error::Expired));
        assert_eq!(check_time(&presigned("soon"), &request, now), Err(V2Error::ExpiryTooLong));
    }

    #[test]
    fn signatures_are_found_where_s3s_looks() {
        let query = Query::parse("AWSAccessKeyId=AKID&Expires=10&Signature=a%2Bb").unwrap();
        assert_eq!(
            Signed::of(None, &query),
            Some(Signed::Query { access_key: "AKID", signature: "a+b", expires: "10" })
        );
        let none = Query::default();
        assert_eq!(
            Signed::of(Some("AWS AKID:sig"), &none),
            Some(Signed::Header { access_key: "AKID", signature: "sig" })
        );
        assert_eq!(Signed::of(Some("AWS4-HMAC-SHA256 Credential=x"), &none), None);
        assert_eq!(Signed::of(None, &none), None);
    }
}
