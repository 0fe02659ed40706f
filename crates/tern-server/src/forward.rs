//! Requests signed for another region of the deployment but sent to this
//! one's endpoint (the aws cli re-signs for a bucket's region after a
//! redirect, yet keeps a custom endpoint): this region relays them to the
//! region that owns the signature's scope, which verifies and answers them.
//! Nothing here is trusted to a relayed request: this region reads no
//! credential and decides nothing; it only passes bytes both ways, a
//! bounded number at a time.
//!
//! The client's address and transport travel along, so the owner's
//! policies (`aws:SourceIp`, `aws:SecureTransport`) judge the client and
//! never this region. The claim carries a MAC under the deployment's peer
//! secret bound to the request's signature, the owning region and the time;
//! the owner believes it only when the MAC holds, and never believes more
//! of the transport than its own connection from the relay shows. The web
//! console vouches the same way ([`Voucher`]) for the person whose calls it
//! makes, so their address is what policies and logs see.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::Body;
use tern_crypto::mac::Mac;

use crate::body::RequestBody;
use crate::listener::{ClientAddress, Transport};

/// `<client address> <TLS: 1|0> <loopback listener: 1|0> <unix seconds>`, as
/// the relaying region saw the client.
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-tern-forwarded-for");
/// Hex MAC of the claim, the owning region and the request.
const FORWARDED_PROOF: HeaderName = HeaderName::from_static("x-tern-forwarded-proof");
/// How far a claim's time may be from the owner's clock.
const CLAIM_SKEW_SECS: i64 = 300;
/// Relays in flight, at most: in all, and from one client address.
const MAX_RELAYS: usize = 256;
const MAX_RELAYS_PER_CLIENT: usize = 32;

/// Headers of one hop, never relayed.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"];

pub struct Forwarder {
    /// This region's name: the claims it believes name it.
    region: String,
    http: reqwest::Client,
    /// The other regions' endpoints, by name.
    endpoints: BTreeMap<String, String>,
    voucher: Voucher,
    idle: Duration,
    in_flight: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A relayed request whose claimed origin does not verify.
#[derive(Debug)]
pub struct Unproven;

/// A relay's place among those in flight, held until its answer has been
/// streamed back whole; given back when dropped.
struct Slot {
    in_flight: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// What the slot is counted against: see [`network_of`].
    network: IpAddr,
}

/// Whom a relay slot is counted against: an IPv4 address, or an IPv6
/// address's /64, which one host is usually given whole.
fn network_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().expect("relay slots");
        if let Some(n) = in_flight.get_mut(&self.network) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.network);
            }
        }
    }
}

impl Forwarder {
    /// `http` carries the deployment's TLS trust (and peer certificate).
    #[must_use]
    pub fn new(
        region: &str,
        http: reqwest::Client,
        endpoints: BTreeMap<String, String>,
        peer_secret: &tern_crypto::Key256,
        idle: Duration,
    ) -> Self {
        let voucher = Voucher::new(peer_secret);
        Self { region: region.to_owned(), http, endpoints, voucher, idle, in_flight: Arc::default() }
    }

    /// Whether `region` is another region of the deployment.
    #[must_use]
    pub fn serves(&self, region: &str) -> bool {
        self.endpoints.contains_key(region)
    }

    /// A place for one more relay from `client`, if there is one (a
    /// client is in the map only while it holds one: the map stays bounded).
    fn slot(&self, client: IpAddr) -> Option<Slot> {
        let network = network_of(client);
        let mut in_flight = self.in_flight.lock().expect("relay slots");
        let total: usize = in_flight.values().sum();
        if total >= MAX_RELAYS || in_flight.get(&network).is_some_and(|n| *n >= MAX_RELAYS_PER_CLIENT) {
            return None;
        }
        *in_flight.entry(network).or_default() += 1;
        Some(Slot { in_flight: Arc::clone(&self.in_flight), network })
    }

    /// Relays `req` to `region` and streams its answer back.
    pub async fn forward(&self, req: Request<Incoming>, region: &str) -> Response<Body> {
        let Some(endpoint) = self.endpoints.get(region) else {
            return unavailable(region);
        };
        let path_and_query = req.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str).to_owned();
        // What the owner receives must be what was signed, byte for byte.
        let url = format!("{endpoint}{path_and_query}");
        let unchanged = reqwest::Url::parse(&url).is_ok_and(|u| {
            let sent = u.query().map_or_else(|| u.path().to_owned(), |q| format!("{}?{q}", u.path()));
            sent == path_and_query
        });
        if !unchanged || path_and_query.starts_with("/_tern/") {
            return refusal(StatusCode::BAD_REQUEST, "InvalidURI", "This request cannot be relayed to its region.");
        }
        if carries_customer_key(req.headers()) && !secure_to(endpoint) {
            return refusal(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
            );
        }
        let client = req
            .extensions()
            .get::<ClientAddress>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ClientAddress(a)| a.ip().to_canonical());
        let Some(slot) = self.slot(client) else {
            return refusal(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.");
        };
        let origin = ClientOrigin::of(req.extensions());
        let signed = Signed::of(req.method().as_str(), &path_and_query, req.headers());
        let vouched = self.voucher.vouch(region, &signed, origin);
        let (parts, incoming) = req.into_parts();
        let mut headers = relayed(&parts.headers);
        for (name, value) in vouched {
            headers.insert(name, value);
        }
        let body = reqwest::Body::wrap_stream(RequestBody::new(incoming, self.idle, false));
        let sent = self.http.request(parts.method, url).headers(headers).body(body).send().await;
        match sent {
            Ok(answer) => {
                let answer: http::Response<reqwest::Body> = answer.into();
                let (mut parts, body) = answer.into_parts();
                parts.headers = relayed(&parts.headers);
                Response::from_parts(parts, Body::http_body_unsync(Held { body, _slot: slot }))
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
        let path_and_query = req.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let signed = Signed::of(req.method().as_str(), path_and_query, req.headers());
        if !self.voucher.proof.verify(&proof_message(&self.region, &signed, &claim), &proof) {
            return Err(Unproven);
        }
        let claimed = parse_claim(&claim).ok_or(Unproven)?;
        if (now_secs() - claimed.at).abs() > CLAIM_SKEW_SECS {
            return Err(Unproven);
        }
        let extensions = req.extensions_mut();
        let hop = extensions.get::<Transport>().copied();
        let relay = extensions.get::<ClientAddress>().map(|ClientAddress(a)| *a);
        // A loopback address is the relay's own business, not this host's:
        // from another host it is the relay's address that policies see.
        let off_host = !hop.is_some_and(|t| t.loopback);
        let ip = match relay {
            Some(relay) if off_host && claimed.ip.to_canonical().is_loopback() => relay.ip(),
            _ => claimed.ip,
        };
        let port = relay.map_or(0, |a| a.port());
        extensions.insert(ClientAddress(std::net::SocketAddr::new(ip, port)));
        // No more security than both legs had; and the client holds no peer
        // certificate, whatever the relay's connection did.
        extensions.insert(Transport {
            tls: claimed.tls && hop.is_some_and(|t| t.tls),
            peer_certificate: false,
            loopback: claimed.loopback && hop.is_some_and(|t| t.loopback),
        });
        Ok(true)
    }
}

/// A relayed answer's body, holding its relay's slot until it ends.
struct Held<B> {
    body: B,
    _slot: Slot,
}

impl<B: http_body::Body + Unpin> http_body::Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// What a relaying region says of its client.
struct Claim {
    ip: IpAddr,
    tls: bool,
    loopback: bool,
    at: i64,
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Where a client is, as a region's listener saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOrigin {
    pub ip: IpAddr,
    pub tls: bool,
    pub loopback: bool,
}

impl ClientOrigin {
    /// The client of a request, from what its listener put in its extensions.
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> Self {
        let ip = extensions.get::<ClientAddress>().map(|ClientAddress(a)| a.ip().to_canonical());
        let transport = extensions.get::<Transport>();
        Self {
            ip: ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            tls: transport.is_some_and(|t| t.tls),
            loopback: transport.is_some_and(|t| t.loopback),
        }
    }
}

/// What of a signed request a claim is bound to.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub authorization: &'a str,
    pub amz_date: &'a str,
}

impl<'a> Signed<'a> {
    #[must_use]
    pub fn of(method: &'a str, path_and_query: &'a str, headers: &'a HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Self { method, path_and_query, authorization: header("authorization"), amz_date: header("x-amz-date") }
    }
}

/// Vouches to a region of the deployment for the client a signed request is
/// made for: by a relaying region, or by the web console for its signed-in
/// user. Only holders of the peer secret can.
pub struct Voucher {
    proof: Mac,
}

impl Voucher {
    #[must_use]
    pub fn new(peer_secret: &tern_crypto::Key256) -> Self {
        Self { proof: Mac::derived(peer_secret, b"tern forwarded origin v2") }
    }

    /// The two headers that carry `origin` to `region` for the `signed` request.
    #[must_use]
    pub fn vouch(&self, region: &str, signed: &Signed<'_>, origin: ClientOrigin) -> [(HeaderName, HeaderValue); 2] {
        let flag = |on: bool| u8::from(on);
        let claim = format!("{} {} {} {}", origin.ip, flag(origin.tls), flag(origin.loopback), now_secs());
        let proof = hex::encode(self.proof.sign(&proof_message(region, signed, &claim)));
        [
            (FORWARDED_FOR, HeaderValue::from_str(&claim).expect("an address and digits are a header value")),
            (FORWARDED_PROOF, HeaderValue::from_str(&proof).expect("hex is a header value")),
        ]
    }
}

fn parse_claim(claim: &str) -> Option<Claim> {
    let flag = |text: &str| match text {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let mut fields = claim.split(' ');
    let claimed = Claim {
        ip: fields.next()?.parse().ok()?,
        tls: flag(fields.next()?)?,
        loopback: flag(fields.next()?)?,
        at: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some(claimed)
}

/// What the MAC binds: the owning region, the claim and the request's own
/// signature, so a claim can be lifted neither onto another request nor
/// to another region.
fn proof_message(region: &str, signed: &Signed<'_>, claim: &str) -> Vec<u8> {
    let parts = [
        region.as_bytes(),
        signed.method.as_bytes(),
        signed.path_and_query.as_bytes(),
        signed.authorization.as_bytes(),
        signed.amz_date.as_bytes(),
        claim.as_bytes(),
    ];
    let mut message = Vec::new();
    for part in parts {
        message.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

fn carries_customer_key(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| name.as_str().contains("-server-side-encryption-customer-key"))
}

/// Whether bytes sent to `endpoint` stay secret: HTTPS, or plain HTTP to a
/// loopback address (nothing leaves the machine).
fn secure_to(endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else { return false };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    url.scheme() == "https" || host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

fn refusal(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let code = s3s::S3ErrorCode::from_bytes(code.as_bytes()).unwrap_or(s3s::S3ErrorCode::InvalidRequest);
    let mut err = s3s::S3Error::with_message(code, message.to_owned());
    err.set_status_code(status);
    err.to_http_response().unwrap_or_else(|_| crate::outer::plain(status, "refused"))
}

fn unavailable(region: &str) -> Response<Body> {
    let message = format!("The request is signed for region {region}, which cannot be reached from this endpoint now.");
    let mut err = s3s::S3Error::with_message(s3s::S3ErrorCode::ServiceUnavailable, message);
    err.set_status_code(StatusCode::SERVICE_UNAVAILABLE);
    err.to_http_response().unwrap_or_else(|_| crate::outer::plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_exactly() {
        let claim = parse_claim("10.0.0.5 1 0 1700000000").unwrap();
        assert_eq!(
            (claim.ip, claim.tls, claim.loopback, claim.at),
            (IpAddr::from([10, 0, 0, 5]), true, false, 1_700_000_000)
        );
        for bad in ["10.0.0.5 1 0", "10.0.0.5 2 0 1", "x 1 0 1", "10.0.0.5 1 0 1 extra"] {
            assert!(parse_claim(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn one_ipv6_host_counts_once_however_many_addresses_it_takes() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(network_of(mapped), IpAddr::from([10, 0, 0, 5]));
        assert_ne!(network_of(IpAddr::from([10, 0, 0, 5])), network_of(IpAddr::from([10, 0, 0, 6])));
    }

    #[test]
    fn customer_keys_go_only_where_they_stay_secret() {
        assert!(secure_to("https://eu.example.net:9101"));
        assert!(secure_to("http://127.0.0.1:9101"));
        assert!(!secure_to("http://10.0.0.7:9101"));
    }
}
