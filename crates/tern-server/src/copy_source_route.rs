//! `POST /_tern/copy-source`: a copy's source read in its own region for a
//! caller of another (`tern_s3::Region::serve_copy_source` decides), and the
//! calling side of it. Root only, with the caller named in signed headers;
//! a route between regions (the peer certificate, with mutual TLS).
//!
//! The answer carries the source's metadata in a header and, when a range
//! was asked for, its plaintext as the body, streamed.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use s3s::dto::StreamingBlob;
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tern_iam::policy::Principal;
use tern_s3::{SourceMeta, SourceRead};

use crate::internal_routes::{COPY_SOURCE, caller_headers, caller_of};
use crate::peer::{PeerClient, PeerRequest};

/// The source's metadata: base64 of its JSON.
const META_HEADER: &str = "x-tern-source-meta";
/// A request names one object: its JSON is small.
const MAX_REQUEST: usize = 16 << 10;

pub struct CopySourceRoute {
    pub region: Arc<tern_s3::Region>,
    pub root_access_key: String,
}

#[async_trait]
impl S3Route for CopySourceRoute {
    fn is_match(&self, method: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        method == Method::POST && uri.path() == COPY_SOURCE
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        crate::internal_routes::root_only(req, &self.root_access_key)
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let who = caller_of(&req.headers, &self.region.account_id)
            .ok_or_else(|| s3_error!(AccessDenied, "A copy's source is read for a caller named in signed headers."))?;
        let body = req
            .input
            .store_all_limited(MAX_REQUEST)
            .await
            .map_err(|_| s3_error!(InvalidRequest, "The read is too large."))?;
        let read: SourceRead =
            serde_json::from_slice(&body).map_err(|_| s3_error!(InvalidRequest, "The read is malformed."))?;
        let (meta, bytes) = self.region.serve_copy_source(&who, read).await?;
        let meta = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&meta).map_err(|e| s3_error!(InternalError, "{e}"))?);
        let body = bytes.map_or_else(Body::empty, |blob| Body::from(Box::pin(blob) as s3s::stream::DynByteStream));
        let mut response = S3Response::with_status(body, StatusCode::OK);
        let value = HeaderValue::from_str(&meta).map_err(|_| s3_error!(InternalError, "metadata header"))?;
        response.headers.insert(META_HEADER, value);
        Ok(response)
    }
}

/// Asks `peer` for `read` as `who`, streaming the bytes over `http`.
pub async fn read(
    peer: Option<&PeerClient>,
    http: &reqwest::Client,
    who: &Principal,
    read: &SourceRead,
) -> S3Result<(SourceMeta, Option<StreamingBlob>)> {
    let unavailable = |e: &dyn std::fmt::Display| {
        let mut err = S3Error::with_message(S3ErrorCode::ServiceUnavailable, format!("The copy's source region: {e}"));
        err.set_status_code(StatusCode::SERVICE_UNAVAILABLE);
        err
    };
    let peer = peer.ok_or_else(|| unavailable(&"not in the deployment"))?;
    let named = caller_headers(who);
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(named.iter().map(|(name, value)| (*name, value.as_str())));
    let body = Bytes::from(serde_json::to_vec(read).map_err(|e| unavailable(&e))?);
    let request =
        PeerRequest { service: "s3", method: Method::POST, path_and_query: COPY_SOURCE, headers: &headers, body };
    let answer = peer.open(http, request).await.map_err(|e| unavailable(&format!("{e:#}")))?;
    if !answer.status().is_success() {
        let status = answer.status();
        return Err(refusal(status, &error_text(answer).await));
    }
    let meta = answer
        .headers()
        .get(META_HEADER)
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .and_then(|json| serde_json::from_slice::<SourceMeta>(&json).ok())
        .ok_or_else(|| unavailable(&"an answer without the source's metadata"))?;
    let body = read.range.map(|_| StreamingBlob::wrap(answer.bytes_stream()));
    Ok((meta, body))
}

/// The first 64 KiB of an error answer: an error document is small.
async fn error_text(mut answer: reqwest::Response) -> String {
    let mut text = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        text.extend_from_slice(&chunk);
        if text.len() > 64 << 10 {
            break;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The source region's refusal, as it gave it (code, message and status);
/// without a code, a server's failure is one to retry.
fn refusal(status: StatusCode, xml: &str) -> S3Error {
    let field = |name: &str| xml.split(&format!("<{name}>")).nth(1).and_then(|rest| rest.split('<').next());
    let fallback = if status.is_server_error() { S3ErrorCode::ServiceUnavailable } else { S3ErrorCode::AccessDenied };
    let code = field("Code").map_or(fallback, |c| {
        S3ErrorCode::from_bytes(c.as_bytes()).unwrap_or(S3ErrorCode::Custom(c.to_owned().into()))
    });
    let mut err =
        S3Error::with_message(code, field("Message").unwrap_or("The source region refused the read.").to_owned());
    err.set_status_code(status);
    err
}
