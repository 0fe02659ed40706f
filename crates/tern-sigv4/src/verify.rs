//! `SigV4` verification of header-signed requests for the services s3s does
//! not cover (KMS, IAM, STS). Written here because no verifier fits our
//! toolchain with a current dependency set (see ecosystem.md §2); tested
//! against `aws-sigv4`, the SDKs' own signer, as an oracle.

use std::fmt::Write as _;

use aws_lc_rs::{constant_time, digest, hmac};
use time::OffsetDateTime;
use time::macros::format_description;
use zeroize::Zeroizing;

use crate::scope::{Credential, CredentialScope, authorization_field, parse_credential};

/// Requests may be this far from the server's clock, either way.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The parts of a request a signature covers. Header names are lowercase.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded once).
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Why a request is not authentic; each maps to one AWS error per protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the Authorization header is missing or malformed: {0}")]
    Malformed(&'static str),
    #[error("the access key is not known")]
    UnknownAccessKey,
    #[error("the request time is too far from the server's clock")]
    Skewed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the x-amz-content-sha256 header does not match the body that was received")]
    BodyHashMismatch,
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub scope: CredentialScope,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

pub fn parse_authorization(header: &str) -> Result<Authorization<'_>, VerifyError> {
    let field = |name: &str| authorization_field(header, name);
    let credential = field("Credential").ok_or(VerifyError::Malformed("Credential"))?;
    let Credential { access_key, date, scope } =
        parse_credential(credential).ok_or(VerifyError::Malformed("Credential"))?;
    let signed_headers: Vec<&str> =
        field("SignedHeaders").ok_or(VerifyError::Malformed("SignedHeaders"))?.split(';').collect();
    if !signed_headers.contains(&"host") {
        return Err(VerifyError::Malformed("SignedHeaders must include host"));
    }
    let signature = field("Signature").ok_or(VerifyError::Malformed("Signature"))?;
    Ok(Authorization { access_key, date, scope, signed_headers, signature })
}

/// RFC 3986 encoding as `SigV4` wants it: everything but `A-Za-z0-9-_.~`.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| urlencoding::decode(s).map_or_else(|_| s.to_owned(), std::borrow::Cow::into_owned);
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn canonical_header_value(request: &SignedRequest<'_>, name: &str) -> String {
    let values: Vec<String> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    values.join(",")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec())
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// A request whose `Authorization` header is well formed, whose date is
/// current and whose access key is known: everything that can be checked
/// before its body is read, so an anonymous client cannot make the server
/// hold a body at all.
pub struct Admitted<'a> {
    auth: Authorization<'a>,
    amz_date: &'a str,
    secret: Zeroizing<String>,
    /// The signature held over the head with this body hash: only the body
    /// is left to check.
    checked_ahead: bool,
}

/// Checks what `headers` say about who signed a request, at `now`; the
/// secret of the access key comes from `secret_for`.
pub fn admit<'a>(
    headers: &'a [(&'a str, &'a str)],
    secret_for: impl FnOnce(&str) -> Option<Zeroizing<String>>,
    now: OffsetDateTime,
) -> Result<Admitted<'a>, VerifyError> {
    let auth = parse_authorization(header(headers, "authorization").ok_or(VerifyError::Malformed("missing"))?)?;
    let amz_date = header(headers, "x-amz-date").ok_or(VerifyError::Malformed("x-amz-date is required"))?;
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed_at = time::PrimitiveDateTime::parse(amz_date, &format)
        .map_err(|_| VerifyError::Malformed("x-amz-date"))?
        .assume_utc();
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(VerifyError::Malformed("credential date does not match x-amz-date"));
    }
    if (now - signed_at).whole_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(VerifyError::Skewed);
    }
    let secret = secret_for(auth.access_key).ok_or(VerifyError::UnknownAccessKey)?;
    Ok(Admitted { auth, amz_date, secret, checked_ahead: false })
}

impl Admitted<'_> {
    /// The access key the request names.
    #[must_use]
    pub fn access_key(&self) -> &str {
        self.auth.access_key
    }

    /// Checks the signature before the body is read, when the request names
    /// its body's hash in `x-amz-content-sha256` (as Tern's regions and
    /// S3-style signers do): then a caller without the secret gets nothing
    /// read at all. `head` is the request with an empty body; returns
    /// whether the signature could be checked. [`Admitted::verify`] must
    /// still see the body.
    pub fn verify_ahead(&mut self, head: &SignedRequest<'_>) -> Result<bool, VerifyError> {
        let Some(claimed) = header(head.headers, "x-amz-content-sha256") else { return Ok(false) };
        if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VerifyError::BodyHashMismatch);
        }
        self.check(head, claimed)?;
        self.checked_ahead = true;
        Ok(true)
    }

    /// Checks the signature over `request`. The payload hash is the hash of
    /// the body actually received; an `x-amz-content-sha256` header that
    /// claims anything else is refused, so a signature always covers the body.
    /// Returns the access key and scope the request was signed with.
    pub fn verify(self, request: &SignedRequest<'_>) -> Result<(String, CredentialScope), VerifyError> {
        let payload_hash = hex::encode(digest::digest(&digest::SHA256, request.body));
        if header(request.headers, "x-amz-content-sha256").is_some_and(|claimed| claimed != payload_hash) {
            return Err(VerifyError::BodyHashMismatch);
        }
        // Checked ahead, the signature covers the claimed hash, now the body's.
        if !self.checked_ahead {
            self.check(request, &payload_hash)?;
        }
        Ok((self.auth.access_key.to_owned(), self.auth.scope))
    }

    /// Whether the signature is that of `request` with a body of `payload_hash`.
    fn check(&self, request: &SignedRequest<'_>, payload_hash: &str) -> Result<(), VerifyError> {
        let Self { auth, amz_date, secret, .. } = self;
        let mut canonical_headers = String::new();
        for name in &auth.signed_headers {
            let _ = writeln!(canonical_headers, "{name}:{}", canonical_header_value(request, name));
        }
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            request.method,
            encode(request.path, true),
            canonical_query(request.query),
            canonical_headers,
            auth.signed_headers.join(";"),
            payload_hash
        );
        let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.scope.region, auth.scope.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(digest::digest(&digest::SHA256, canonical_request.as_bytes()))
        );
        let seed = Zeroizing::new(format!("AWS4{}", secret.as_str()));
        let mut key = hmac_sha256(seed.as_bytes(), auth.date.as_bytes());
        for part in [auth.scope.region.as_str(), auth.scope.service.as_str(), "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()).as_slice());
        constant_time::verify_slices_are_equal(expected.as_bytes(), auth.signature.as_bytes())
            .map_err(|_| VerifyError::Mismatch)
    }
}

/// Checks `request`'s `Authorization` header against `secret_for(access_key)`
/// ([`admit`], then [`Admitted::verify`]).
pub fn verify(
    request: &SignedRequest<'_>,
    secret_for: impl FnOnce(&str) -> Option<Zeroizing<String>>,
    now: OffsetDateTime,
) -> Result<(String, CredentialScope), VerifyError> {
    admit(request.headers, secret_for, now)?.verify(request)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// Signs like the AWS SDKs do (aws-sigv4), for `service` in us-east-1.
    fn sign(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8], service: &str) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = aws_credential_types::Credentials::new(KEY, SECRET, None, None, "t").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(method, uri, headers.iter().copied(), SignableBody::Bytes(body)).unwrap();
        let mut request = http::Request::builder().method(method).uri(uri).body(()).unwrap();
        for (k, v) in headers {
            request.headers_mut().insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        sign(signable, &params).unwrap().into_parts().0.apply_to_request_http1x(&mut request);
        request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect()
    }

    fn check(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(String, CredentialScope), VerifyError> {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = SignedRequest { method, path, query, headers: &headers, body };
        verify(&request, |key| (key == KEY).then(|| Zeroizing::new(SECRET.to_owned())), OffsetDateTime::now_utc())
    }

    #[test]
    fn accepts_what_the_sdk_signer_produces() {
        let body = br#"{"KeyId":"alias/demo","NumberOfBytes":32}"#;
        let headers = [
            ("host", "127.0.0.1:9100"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.GenerateDataKey"),
        ];
        let signed = sign("POST", "http://127.0.0.1:9100/", &headers, body, "kms");
        let (key, scope) = check("POST", "/", "", &signed, body).unwrap();
        assert_eq!((key.as_str(), scope.service.as_str(), scope.region.as_str()), (KEY, "kms", "us-east-1"));

        let query = "Action=GetUser&UserName=al%20ice&Version=2010-05-08";
        let signed = sign("GET", &format!("http://127.0.0.1:9100/?{query}"), &[("host", "127.0.0.1:9100")], b"", "iam");
        check("GET", "/", query, &signed, b"").unwrap();
    }

    #[test]
    fn refuses_tampering_unknown_keys_and_skew() {
        let body = br#"{"KeyId":"k"}"#;
        let signed = sign("POST", "http://h/", &[("host", "h"), ("x-amz-target", "TrentService.Decrypt")], body, "kms");
        assert_eq!(check("POST", "/", "", &signed, br#"{"KeyId":"other"}"#), Err(VerifyError::Mismatch));
        let mut retargeted = signed.clone();
        for (k, v) in &mut retargeted {
            if k == "x-amz-target" {
                *v = "TrentService.Encrypt".into();
            }
        }
        assert_eq!(check("POST", "/", "", &retargeted, body), Err(VerifyError::Mismatch));
        let foreign: Vec<(String, String)> =
            signed.iter().map(|(k, v)| (k.clone(), v.replace(KEY, "AKIDOTHER"))).collect();
        assert_eq!(check("POST", "/", "", &foreign, body), Err(VerifyError::UnknownAccessKey));
        let old: Vec<(String, String)> = signed
            .iter()
            .map(
                |(k, v)| {
                    if k == "x-amz-date" { (k.clone(), "20200101T000000Z".into()) } else { (k.clone(), v.clone()) }
                },
            )
            .collect();
        assert!(matches!(check("POST", "/", "", &old, body), Err(VerifyError::Skewed | VerifyError::Malformed(_))));
    }

    #[test]
    fn the_signature_covers_the_body_received_not_the_hash_claimed() {
        use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
        let body = b"Action=GetUser&Version=2010-05-08";
        let identity = aws_credential_types::Credentials::new(KEY, SECRET, None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("iam")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers = [("host", "h")];
        let signable =
            SignableRequest::new("POST", "http://h/", headers.iter().copied(), SignableBody::Bytes(body)).unwrap();
        let mut request = http::Request::builder().method("POST").uri("http://h/").body(()).unwrap();
        request.headers_mut().insert("host", "h".parse().unwrap());
        sign(signable, &params).unwrap().into_parts().0.apply_to_request_http1x(&mut request);
        let signed: Vec<(String, String)> =
            request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
        assert!(signed.iter().any(|(k, _)| k == "x-amz-content-sha256"));
        check("POST", "/", "", &signed, body).unwrap();
        let swapped = b"Action=CreateUser&UserName=mallory&Version=2010-05-08";
        assert_eq!(check("POST", "/", "", &signed, swapped), Err(VerifyError::BodyHashMismatch));

        // With the hash named, the signature is checked before any body is read.
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let head = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"" };
        let secret = |key: &str| (key == KEY).then(|| Zeroizing::new(SECRET.to_owned()));
        assert_eq!(admit(&headers, secret, OffsetDateTime::now_utc()).unwrap().verify_ahead(&head), Ok(true));
        let wrong = |_: &str| Some(Zeroizing::new("not the secret".to_owned()));
        assert_eq!(
            admit(&headers, wrong, OffsetDateTime::now_utc()).unwrap().verify_ahead(&head),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_never_panic() {
        for header in [
            "",
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256 Credential=a/b",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=x, Signature=0",
            "Basic Zm9v",
        ] {
            assert!(parse_authorization(header).is_err(), "{header}");
        }
    }
}
