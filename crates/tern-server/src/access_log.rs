//! One line per request at INFO (target `tern::access`): the request id,
//! who called, the operation, the bucket and key, the status, the bytes
//! each way and the time taken. The services fill in who and what as they
//! learn it, through a note the outer layer puts in the request's
//! extensions; the outer layer writes the line once the answer is ready.
//! The query string is never logged: presigned URLs carry credentials.
//! What a client chose (operation, bucket, key) is written quoted and
//! escaped, so no name can start a line of its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Response, StatusCode};
use s3s::Body;

/// Who called and what they asked, as far as a service got.
#[derive(Default)]
pub struct AccessNote {
    noted: Mutex<Noted>,
}

#[derive(Default)]
struct Noted {
    principal: Option<String>,
    operation: Option<String>,
    /// `s3:signatureversion` and `s3:authType`, for S3 requests.
    signature: Option<(&'static str, &'static str)>,
}

impl AccessNote {
    pub fn caller(&self, arn: &str) {
        self.noted.lock().expect("note lock").principal = Some(arn.to_owned());
    }

    pub fn operation(&self, operation: &str) {
        self.noted.lock().expect("note lock").operation = Some(operation.to_owned());
    }

    pub fn signature(&self, signature: Option<(&'static str, &'static str)>) {
        self.noted.lock().expect("note lock").signature = signature;
    }
}

/// The note in a request's extensions, if the outer layer put one there.
pub fn note(extensions: &http::Extensions) -> Option<&AccessNote> {
    extensions.get::<Arc<AccessNote>>().map(AsRef::as_ref)
}

/// What the outer layer knows of a request before it is answered.
pub struct Arrival {
    pub method: Method,
    pub path: String,
    pub bytes_in: Option<u64>,
    pub origin: tern_iam::policy::Origin,
    pub user_agent: Option<String>,
    pub host: Option<String>,
    /// The S3 subresource the query names (`versioning`, `uploads`, …).
    pub subresource: Option<String>,
}

/// S3 subresources an access-log operation is named after, as AWS names them.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "tagging",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

impl Arrival {
    /// What the access line needs of `req`; with `for_files`, also what only
    /// AWS's format asks (user agent, host, subresource), read only then.
    pub fn of<B>(req: &http::Request<B>, for_files: bool) -> Self {
        let header =
            |name: http::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut arrival = Self {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            bytes_in: header(http::header::CONTENT_LENGTH).and_then(|n| n.parse().ok()),
            origin: crate::listener::origin(req.extensions()),
            user_agent: None,
            host: None,
            subresource: None,
        };
        if for_files {
            let query = req.uri().query().unwrap_or_default();
            arrival.subresource = query
                .split('&')
                .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
                .find(|name| SUBRESOURCES.contains(name))
                .map(str::to_owned);
            arrival.user_agent = header(http::header::USER_AGENT);
            arrival.host = header(http::header::HOST).or_else(|| req.uri().authority().map(ToString::to_string));
        }
        arrival
    }
}

/// Writes the request's line: at INFO for clients' requests (the console's
/// too), at DEBUG for Tern's other routes, which regions poll.
pub fn record(arrival: &Arrival, note: &AccessNote, status: StatusCode, response: &Response<Body>, elapsed: Duration) {
    let noted = note.noted.lock().expect("note lock");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    let request_id = header("x-amz-request-id").or_else(|| header("x-amzn-requestid")).unwrap_or("-");
    let bytes_out = bytes_out(response);
    let (bucket, key) = bucket_and_key(&arrival.path);
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "tern::access",
                request_id = %request_id,
                principal = %noted.principal.as_deref().unwrap_or("-"),
                operation = ?noted.operation.as_deref().unwrap_or("-"),
                bucket = ?bucket.as_deref().unwrap_or("-"),
                key = ?key.as_deref().unwrap_or("-"),
                status = status.as_u16(),
                bytes_in = arrival.bytes_in.unwrap_or(0),
                bytes_out = bytes_out.unwrap_or(0),
                latency_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
                "{} {}",
                arrival.method,
                arrival.path,
            )
        };
    }
    if arrival.path.starts_with("/_tern/") && !crate::web_console::serves(&arrival.path) {
        line!(debug);
    } else {
        line!(info);
    }
}

/// The request's line in AWS's server access log format, for `log` (a
/// request about a bucket only).
pub fn record_for_bucket(
    log: &crate::server_access_log::ServerAccessLog,
    owner: &str,
    (arrival, note): (&Arrival, &AccessNote),
    response: &Response<Body>,
    elapsed: Duration,
) {
    let (Some(bucket), key) = bucket_and_key(&arrival.path) else { return };
    if !tern_core::names::is_valid_bucket_name(&bucket) {
        return;
    }
    let noted = note.noted.lock().expect("note lock");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    let bytes_sent = bytes_out(response);
    let error_code = error_code(response);
    let at = time::OffsetDateTime::now_utc();
    let line = crate::server_access_log::line(
        &crate::server_access_log::Served {
            owner,
            bucket: &bucket,
            key: key.as_deref(),
            remote_ip: arrival.origin.source_ip,
            requester: noted.principal.as_deref(),
            request_id: header("x-amz-request-id").unwrap_or("-"),
            method: &arrival.method,
            path: &arrival.path,
            subresource: arrival.subresource.as_deref(),
            status: response.status().as_u16(),
            error_code: error_code.as_deref(),
            bytes_sent,
            object_size: if arrival.method == Method::PUT { arrival.bytes_in } else { bytes_sent },
            total: elapsed,
            user_agent: arrival.user_agent.as_deref(),
            version_id: header("x-amz-version-id"),
            signature: noted.signature,
            tls: arrival.origin.secure_transport,
            host: arrival.host.as_deref(),
        },
        at,
    );
    log.push(crate::server_access_log::Entry { bucket, at, line });
}

/// The S3 error code of an error answer, read from its XML body (a HEAD's
/// has none). Only a plain token is believed: it becomes one log field.
fn error_code(response: &Response<Body>) -> Option<String> {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return None;
    }
    let body = response.body().bytes()?;
    let (_, after) = std::str::from_utf8(&body).ok()?.split_once("<Code>")?;
    let (code, _) = after.split_once("</Code>")?;
    let token = !code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
    token.then(|| code.to_owned())
}

/// The length of the answer's body: known to the body, or named by its header.
fn bytes_out(response: &Response<Body>) -> Option<u64> {
    let header = response.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    http_body::Body::size_hint(response.body()).exact().or_else(|| header.and_then(|n| n.parse().ok()))
}

/// The bucket and key of a path-style S3 path, percent-decoded; none for
/// Tern's own routes and the other services' `/`.
fn bucket_and_key(path: &str) -> (Option<String>, Option<String>) {
    if path.starts_with("/_tern/") {
        return (None, None);
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.split_once('/') {
        Some((bucket, key)) if !key.is_empty() => (Some(decode(bucket)), Some(decode(key))),
        Some((bucket, _)) => (Some(decode(bucket)), None),
        None if !rest.is_empty() => (Some(decode(rest)), None),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_and_key;

    #[test]
    fn paths_name_their_bucket_and_key_decoded() {
        let owned = |(b, k): (Option<String>, Option<String>)| (b.unwrap_or_default(), k.unwrap_or_default());
        assert_eq!(owned(bucket_and_key("/photos/2026/a%20b.jpg")), ("photos".into(), "2026/a b.jpg".into()));
        assert_eq!(owned(bucket_and_key("/photos/")), ("photos".into(), String::new()));
        assert_eq!(owned(bucket_and_key("/photos")), ("photos".into(), String::new()));
        assert_eq!(owned(bucket_and_key("/")), (String::new(), String::new()));
        assert_eq!(owned(bucket_and_key("/_tern/replication/x")), (String::new(), String::new()));
    }
}
