//! Requests signed for another region of the deployment but sent to this
//! one's endpoint (the aws cli re-signs for a bucket's region after a
//! redirect, yet keeps a custom endpoint): this region relays them to the
//! region that owns the signature's scope, which verifies and answers them.
//! Nothing here is trusted to a relayed request: this region reads no
//! credential and decides nothing; it only passes bytes both ways.
//!
//! The client's address and transport travel along, so the owner's
//! policies (`aws:SourceIp`, `aws:SecureTransport`) judge the client and
//! never this region. The claim carries a MAC under the deployment's peer
//! secret bound to the request's signature, and the owner believes it only
//! when the MAC holds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::Body;
use tern_crypto::mac::Mac;

use crate::body::RequestBody;
use crate::listener::{ClientAddress, Transport};

/// `<client address> <TLS: 1 or 0> <loopback listener: 1 or 0>`, as the
/// relaying region saw the client.
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-tern-forwarded-for");
/// Hex MAC of the claim and the request it came with.
const FORWARDED_PROOF: HeaderName = HeaderName::from_static("x-tern-forwarded-proof");

/// Headers of one hop, never relayed.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"];

pub struct Forwarder {
    http: reqwest::Client,
    /// The other regions' endpoints, by name.
    endpoints: BTreeMap<String, String>,
    proof: Mac,
    idle: Duration,
}

/// A relayed request whose claimed origin does not verify.
#[derive(Debug)]
pub struct Unproven;

impl Forwarder {
    /// `http` carries the deployment's TLS trust (and peer certificate).
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        endpoints: BTreeMap<String, String>,
        peer_secret: &tern_crypto::Key256,
        idle: Duration,
    ) -> Self {
        Self { http, endpoints, proof: Mac::derived(peer_secret, b"tern forwarded origin v1"), idle }
    }

    /// Whether `region` is another region of the deployment.
    #[must_use]
    pub fn serves(&self, region: &str) -> bool {
        self.endpoints.contains_key(region)
    }

    /// Relays `req` to `region` and streams its answer back.
    pub async fn forward(&self, req: Request<Incoming>, region: &str) -> Response<Body> {
        let Some(endpoint) = self.endpoints.get(region) else {
            return unavailable(region);
        };
        let claim = claim_of(&req);
        let proof = hex::encode(self.proof.sign(&proof_message(req.method(), req.uri(), req.headers(), &claim)));
        let (parts, incoming) = req.into_parts();
        let url = format!("{endpoint}{}", parts.uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str));
        let mut headers = relayed(&parts.headers);
        headers
            .insert(FORWARDED_FOR, HeaderValue::from_str(&claim).expect("an address and a digit are a header value"));
        headers.insert(FORWARDED_PROOF, HeaderValue::from_str(&proof).expect("hex is a header value"));
        let body = reqwest::Body::wrap_stream(RequestBody::new(incoming, self.idle, false));
        let sent = self.http.request(parts.method, url).headers(headers).body(body).send().await;
        match sent {
            Ok(answer) => {
                let answer: http::Response<reqwest::Body> = answer.into();
                let (mut parts, body) = answer.into_parts();
                parts.headers = relayed(&parts.headers);
                Response::from_parts(parts, Body::http_body_unsync(body))
            }
            Err(e) => {
                tracing::warn!(%region, error = %e, "a request for another region could not be relayed");
                unavailable(region)
            }
        }
    }

    /// At the owning region: adopts the client origin a relaying region
    /// vouches for. `Ok(false)` when the request was not relayed; `Unproven`
    /// when it claims to have been but the claim does not verify.
    pub fn admit(&self, req: &mut Request<Incoming>) -> Result<bool, Unproven> {
        let claim = req.headers().get(&FORWARDED_FOR).map(|v| v.to_str().map(str::to_owned));
        let proof = req.headers().get(&FORWARDED_PROOF).and_then(|v| hex::decode(v.as_bytes()).ok());
        let (claim, proof) = match (claim, proof) {
            (None, None) => return Ok(false),
            (Some(Ok(claim)), Some(proof)) => (claim, proof),
            _ => return Err(Unproven),
        };
        let message = proof_message(req.method(), req.uri(), req.headers(), &claim);
        if !self.proof.verify(&message, &proof) {
            return Err(Unproven);
        }
        let (ip, tls, loopback) = parse_claim(&claim).ok_or(Unproven)?;
        let extensions = req.extensions_mut();
        let port = extensions.get::<ClientAddress>().map_or(0, |ClientAddress(a)| a.port());
        extensions.insert(ClientAddress(std::net::SocketAddr::new(ip, port)));
        // The client holds no peer certificate, whatever the relay's connection did.
        extensions.insert(Transport { tls, peer_certificate: false, loopback });
        Ok(true)
    }
}

/// The client this region saw, as the claim states it.
fn claim_of(req: &Request<Incoming>) -> String {
    let ip = req.extensions().get::<ClientAddress>().map(|ClientAddress(a)| a.ip().to_canonical());
    let transport = req.extensions().get::<Transport>();
    let flag = |on: bool| u8::from(on);
    format!(
        "{} {} {}",
        ip.map_or_else(|| "0.0.0.0".to_owned(), |ip| ip.to_string()),
        flag(transport.is_some_and(|t| t.tls)),
        flag(transport.is_some_and(|t| t.loopback)),
    )
}

/// The address, TLS and loopback of a claim.
fn parse_claim(claim: &str) -> Option<(IpAddr, bool, bool)> {
    let flag = |text: &str| match text {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let mut fields = claim.split(' ');
    let claimed = (fields.next()?.parse().ok()?, flag(fields.next()?)?, flag(fields.next()?)?);
    fields.next().is_none().then_some(claimed)
}

/// What the MAC binds: the claim and the request's own signature, so a
/// claim cannot be lifted onto another request.
fn proof_message(method: &http::Method, uri: &http::Uri, headers: &HeaderMap, claim: &str) -> Vec<u8> {
    let header = |name: &str| headers.get(name).map_or(&b""[..], HeaderValue::as_bytes);
    let mut message = Vec::new();
    for part in [
        method.as_str().as_bytes(),
        uri.to_string().as_bytes(),
        header("authorization"),
        header("x-amz-date"),
        claim.as_bytes(),
    ] {
        message.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

/// `headers` without those of one hop and without any forwarding claim.
fn relayed(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in HOP_BY_HOP {
        out.remove(*name);
    }
    out.remove(&FORWARDED_FOR);
    out.remove(&FORWARDED_PROOF);
    out
}

fn unavailable(region: &str) -> Response<Body> {
    let mut err = s3s::S3Error::with_message(
        s3s::S3ErrorCode::ServiceUnavailable,
        format!("The request is signed for region {region}, which cannot be reached from this endpoint now."),
    );
    err.set_status_code(StatusCode::SERVICE_UNAVAILABLE);
    err.to_http_response().unwrap_or_else(|_| crate::outer::plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable"))
}
