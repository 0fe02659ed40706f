//! Calls from this region to another one, over the same HTTP API any client
//! uses, signed with `SigV4` as the deployment's root identity.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use crate::credentials::RootCredentials;

/// A signed HTTP client for one peer region.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    identity: aws_credential_types::Credentials,
}

/// One request to a peer: which service signs it, and its extra headers.
pub struct PeerRequest<'a> {
    pub service: &'static str,
    pub method: http::Method,
    pub path_and_query: &'a str,
    pub headers: &'a [(&'static str, &'a str)],
    pub body: Bytes,
}

impl PeerClient {
    pub fn new(endpoint: &str, region: &str, root: &RootCredentials) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        let identity = Credentials::new(&root.access_key_id, &root.secret_access_key, None, None, "tern-root");
        Ok(Self { http, endpoint: endpoint.trim_end_matches('/').to_owned(), region: region.to_owned(), identity })
    }

    /// Sends a signed S3-scoped request to `path_and_query` of the peer and
    /// returns its status and body.
    pub async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Bytes,
    ) -> anyhow::Result<(http::StatusCode, Bytes)> {
        self.request(PeerRequest { service: "s3", method, path_and_query, headers: &[], body }).await
    }

    /// Sends `req`, signed for its service, and returns status and body.
    pub async fn request(&self, req: PeerRequest<'_>) -> anyhow::Result<(http::StatusCode, Bytes)> {
        let url = format!("{}{}", self.endpoint, req.path_and_query);
        let mut builder = http::Request::builder().method(req.method).uri(&url);
        for (name, value) in req.headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(req.body)?;
        self.sign(&mut request, req.service)?;
        let (parts, body) = request.into_parts();
        let response = self
            .http
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .with_context(|| format!("region {} at {} is unreachable", self.region, self.endpoint))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, bytes))
    }

    fn sign(&self, request: &mut http::Request<Bytes>, service: &str) -> anyhow::Result<()> {
        let identity = self.identity.clone().into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            headers,
            SignableBody::Bytes(request.body()),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}
