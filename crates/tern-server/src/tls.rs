//! TLS of a region, on rustls with the aws-lc-rs provider: the certificate
//! its listener serves (reloaded on SIGHUP without dropping connections),
//! and the client side regions call each other with — peers verified
//! against the deployment's CA only, presenting the deployment's peer
//! certificate when regions authenticate each other (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tern_core::{RegionConfig, TlsConfig};

/// aws-lc-rs with AES-128-GCM preferred: as strong a choice as any for
/// TLS (and Go's and BoringSSL's first), with four fewer AES rounds than
/// AES-256 for every byte both ends encrypt — what bounds large GETs.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// The protocols a region speaks, in order of preference: HTTP/1.1 first,
/// as S3 itself serves, because large bodies over HTTP/2 stall on flow
/// control with the SDKs' window sizes (64 MiB GETs at 0.39x of plain HTTP
/// with HTTP/2, 0.76x for 1 MiB with HTTP/1.1; docs/performance.md).
fn alpn() -> Vec<Vec<u8>> {
    vec![b"http/1.1".to_vec(), b"h2".to_vec()]
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    tern_core::pem::certificates(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A private key, refused if anyone but its owner may read it.
fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    crate::private_file::ensure_private(path)?;
    let pem = zeroize::Zeroizing::new(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?);
    tern_core::pem::private_key(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn certified_key(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    CertifiedKey::from_der(certificates(cert)?, private_key(key)?, &provider())
        .with_context(|| format!("{} and {} are not a certificate and its key", cert.display(), key.display()))
}

fn roots(ca: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca)? {
        roots.add(cert).with_context(|| format!("{} holds a certificate that is not a CA", ca.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The certificate a listener serves, replaced in place by [`Self::reload`].
#[derive(Debug)]
pub struct ServedCertificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let current = RwLock::new(Arc::new(certified_key(cert, key)?));
        Ok(Self { cert: cert.to_owned(), key: key.to_owned(), current })
    }

    /// Reads the files again; new handshakes use them, open connections
    /// keep theirs. On error the old certificate stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(certified_key(&self.cert, &self.key)?);
        *self.current.write().expect("certificate lock") = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().expect("certificate lock")))
    }
}

/// What a region's HTTPS listener needs.
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub certificate: Arc<ServedCertificate>,
}

impl ServerTls {
    /// The listener's TLS for `region`. With mutual TLS, a client may
    /// present a certificate (peers do), which must then chain to the
    /// deployment's CA; clients without one are served, and only internal
    /// routes refuse them.
    pub fn new(region: &RegionConfig, trust: &TlsConfig) -> anyhow::Result<Self> {
        let (Some(cert), Some(key)) = (&region.tls_cert, &region.tls_key) else {
            anyhow::bail!("region {} serves no TLS", region.name);
        };
        let certificate = Arc::new(ServedCertificate::load(cert, key)?);
        let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
        let builder = if trust.mutual() {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(&trust.ca)?, provider())
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn();
        // The server's preference (AES-128-GCM first) over the client's.
        config.ignore_client_order = true;
        Ok(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), certificate })
    }

    /// Reloads the certificate whenever the process gets SIGHUP.
    pub fn reload_on_sighup(&self, region: &str) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let (certificate, region) = (Arc::clone(&self.certificate), region.to_owned());
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match certificate.reload() {
                    Ok(()) => tracing::info!(%region, "TLS certificate reloaded"),
                    Err(e) => tracing::error!(%region, error = %format!("{e:#}"), "TLS certificate not reloaded"),
                }
            }
        });
        Ok(())
    }
}

/// The client side of calls between regions: peers verified against the
/// deployment's CA (no other root), and with mutual TLS, the deployment's
/// peer certificate presented. `None` trust: plain HTTP peers.
pub fn peer_client_config(trust: Option<&TlsConfig>) -> anyhow::Result<Option<rustls::ClientConfig>> {
    let Some(trust) = trust else { return Ok(None) };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&trust.ca)?);
    let mut config = match (&trust.peer_cert, &trust.peer_key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn();
    Ok(Some(config))
}

/// An HTTP client for calls to peer regions.
pub fn peer_http(trust: Option<&TlsConfig>, builder: reqwest::ClientBuilder) -> anyhow::Result<reqwest::Client> {
    let builder = match peer_client_config(trust)? {
        Some(config) => builder.tls_backend_preconfigured(config),
        None => builder,
    };
    Ok(builder.build()?)
}

/// The HTTP client of Tern's own commands: it trusts `AWS_CA_BUNDLE` (and
/// only it) when that is set, as the aws cli does, else the system's roots.
pub fn client_http() -> anyhow::Result<reqwest::Client> {
    let bundle = std::env::var_os(CA_BUNDLE_ENV).filter(|v| !v.is_empty());
    let trust = bundle.map(|ca| TlsConfig { ca: PathBuf::from(ca), peer_cert: None, peer_key: None });
    peer_http(trust.as_ref(), reqwest::Client::builder())
}

/// Where the aws cli and the SDKs find a CA bundle to trust.
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";
