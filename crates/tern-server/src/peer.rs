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
    /// Adds headers once a request is signed (the console's voucher for its user).
    after_signing: Option<AfterSigning>,
}

/// What a client does to each request it has signed, with its region.
pub type AfterSigning = std::sync::Arc<dyn Fn(&str, &mut http::Request<Bytes>) + Send + Sync>;

/// One request to a peer: which service signs it, and its extra headers.
pub struct PeerRequest<'a> {
    pub service: &'static str,
    pub method: http::Method,
    pub path_and_query: &'a str,
    pub headers: &'a [(&'static str, &'a str)],
    pub body: Bytes,
}

impl PeerClient {
    /// A client of the peer at `endpoint`, over `http` (see [`Self::http`]).
    #[must_use]
    pub fn new(http: &reqwest::Client, endpoint: &str, region: &str, root: &RootCredentials) -> Self {
        let identity = Credentials::new(&root.access_key_id, root.secret_access_key.as_str(), None, None, "tern-root");
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        Self { http: http.clone(), endpoint, region: region.to_owned(), identity, after_signing: None }
    }

    /// This client, doing `hook` to every request once it is signed.
    #[must_use]
    pub fn after_signing(mut self, hook: AfterSigning) -> Self {
        self.after_signing = Some(hook);
        self
    }

    /// The HTTP client a region's peer calls share: the deployment's TLS
    /// trust, short timeouts (these calls are small).
    pub fn http(trust: Option<&tern_core::TlsConfig>) -> anyhow::Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        crate::tls::peer_http(trust, builder)
    }

    /// The peer's region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
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
        let response = self.open(&self.http, req).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, bytes))
    }

    /// Sends `req`, signed for its service, over `http`; the answer's body
    /// is the caller's to read.
    pub async fn open(&self, http: &reqwest::Client, req: PeerRequest<'_>) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{}", self.endpoint, req.path_and_query);
        let mut builder = http::Request::builder().method(req.method).uri(&url);
        for (name, value) in req.headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(req.body)?;
        self.sign(&mut request, req.service)?;
        if let Some(hook) = &self.after_signing {
            hook(&self.region, &mut request);
        }
        let (parts, body) = request.into_parts();
        http.request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .with_context(|| format!("region {} at {} is unreachable", self.region, self.endpoint))
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

/// Signed clients for every other region of a deployment.
pub struct Peers {
    clients: std::collections::BTreeMap<String, PeerClient>,
    /// For answers of any length: no overall deadline, an idle one.
    streaming: reqwest::Client,
}

impl Peers {
    /// Clients for every region of `deployment` but `this_region`.
    #[must_use]
    pub fn new(
        deployment: &tern_core::DeploymentConfig,
        this_region: &str,
        root: &RootCredentials,
        (http, streaming): (&reqwest::Client, &reqwest::Client),
    ) -> Self {
        let clients = deployment.regions.iter().filter(|r| r.name != this_region);
        let clients = clients.map(|r| (r.name.clone(), PeerClient::new(http, &r.endpoint_url(), &r.name, root)));
        Self { clients: clients.collect(), streaming: streaming.clone() }
    }

    #[must_use]
    pub fn get(&self, region: &str) -> Option<&PeerClient> {
        self.clients.get(region)
    }

    /// `GET /{bucket}?{subresource}` in `region` as root: the answer's body,
    /// or `None` if the bucket is not there.
    async fn bucket_subresource(
        &self,
        region: &str,
        bucket: &str,
        subresource: &str,
    ) -> Result<Option<Bytes>, tern_s3::RegistryError> {
        let unavailable = |e: String| tern_s3::RegistryError(e);
        let peer = self.get(region).ok_or_else(|| unavailable(format!("region {region} is not in the deployment")))?;
        let (status, body) = peer
            .send(http::Method::GET, &format!("/{bucket}?{subresource}"), Bytes::new())
            .await
            .map_err(|e| unavailable(format!("{e:#}")))?;
        if status == http::StatusCode::NOT_FOUND || status.is_redirection() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(unavailable(format!("region {region} answered {status}")));
        }
        Ok(Some(body))
    }
}

#[async_trait::async_trait]
impl tern_s3::PeerBuckets for Peers {
    async fn default_encryption(
        &self,
        region: &str,
        bucket: &str,
    ) -> Result<Option<tern_s3::BucketEncryption>, tern_s3::RegistryError> {
        use s3s::xml::Deserialize as _;
        let Some(body) = self.bucket_subresource(region, bucket, "encryption").await? else { return Ok(None) };
        let config = s3s::dto::ServerSideEncryptionConfiguration::deserialize(&mut s3s::xml::Deserializer::new(&body))
            .map_err(|e| tern_s3::RegistryError(format!("region {region} answered unreadable XML: {e}")))?;
        tern_s3::BucketEncryption::from_config(&config).map(Some).map_err(|e| {
            tern_s3::RegistryError(format!("region {region}: {}", e.message().unwrap_or("bad encryption")))
        })
    }

    async fn versioning(
        &self,
        region: &str,
        bucket: &str,
    ) -> Result<Option<tern_store::Versioning>, tern_s3::RegistryError> {
        let Some(body) = self.bucket_subresource(region, bucket, "versioning").await? else { return Ok(None) };
        let text = String::from_utf8_lossy(&body);
        Ok(Some(if text.contains("<Status>Enabled</Status>") {
            tern_store::Versioning::Enabled
        } else if text.contains("<Status>Suspended</Status>") {
            tern_store::Versioning::Suspended
        } else {
            tern_store::Versioning::Unversioned
        }))
    }

    async fn kms_check(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        action: &str,
        key_id: &str,
        via_service: &str,
    ) -> Result<(), String> {
        let body = serde_json::json!({
            "PrincipalArn": principal.arn,
            "SessionArn": principal.session_arn,
            "Action": action,
            "KeyId": key_id,
            "ViaService": via_service,
        });
        self.kms_call(region, "CheckAccess", body).await.map(drop).map_err(|e| format!("{}: {}", e.code, e.message))
    }

    async fn read_source(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        read: &tern_s3::SourceRead,
    ) -> s3s::S3Result<(tern_s3::SourceMeta, Option<s3s::dto::StreamingBlob>)> {
        crate::copy_source_route::read(self.get(region), &self.streaming, principal, read).await
    }

    async fn s3_check(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        action: &str,
        resource: &str,
    ) -> Result<(), String> {
        let peer = self.get(region).ok_or_else(|| format!("region {region} is not in the deployment"))?;
        let path = format!(
            "{}?{}",
            crate::internal_routes::ACCESS_CHECK,
            crate::access_check::query(principal, action, resource)
        );
        let (status, body) = peer.send(http::Method::GET, &path, Bytes::new()).await.map_err(|e| format!("{e:#}"))?;
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body);
        let message = text.split("<Message>").nth(1).and_then(|m| m.split('<').next()).unwrap_or("refused");
        Err(format!("{status}: {message}"))
    }
}
