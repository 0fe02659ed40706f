//! `tern up --tls`: a local CA, a server certificate per region and a peer
//! certificate for mutual TLS between regions, made once under
//! `<data_dir>/tls/` (keys 0600) and reused on every later start. Clients
//! trust the CA through `AWS_CA_BUNDLE`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tern_core::{DeploymentConfig, RegionConfig, TlsConfig};

/// How long what is made here stays valid.
const VALID_FOR: time::Duration = time::Duration::days(3650);

/// Where the CA certificate is, under a deployment's data directory.
#[must_use]
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("ca.pem")
}

/// Makes what is missing and points every region of `deployment` at it:
/// each serves HTTPS with its certificate, and regions verify each other
/// against the CA and present the peer certificate.
pub fn provision(deployment: &mut DeploymentConfig) -> anyhow::Result<()> {
    let dir = deployment.data_dir.join("tls");
    tern_store::private::dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_key = key(&dir.join("ca.key"))?;
    let ca = Issuer::new(ca_params()?, &ca_key);
    let ca_pem = ca_path(&deployment.data_dir);
    if !ca_pem.exists() {
        write_public(&ca_pem, &ca_params()?.self_signed(&ca_key)?.pem())?;
    }
    issued(&dir, "peer", &leaf_params(vec!["tern-peer".to_owned()], ExtendedKeyUsagePurpose::ClientAuth)?, &ca)?;
    for region in &mut deployment.regions {
        let params = leaf_params(names_of(region), ExtendedKeyUsagePurpose::ServerAuth)?;
        issued(&dir, &region.name, &params, &ca)?;
    }
    adopt(deployment);
    Ok(())
}

/// Points every region of `deployment` at what [`provision`] made, without
/// making anything (`tern doctor --tls`); false if there is no local CA.
pub fn adopt(deployment: &mut DeploymentConfig) -> bool {
    let dir = deployment.data_dir.join("tls");
    let ca = ca_path(&deployment.data_dir);
    if !ca.exists() {
        return false;
    }
    let files = |name: &str| (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    for region in &mut deployment.regions {
        let (cert, key) = files(&region.name);
        (region.tls_cert, region.tls_key) = (Some(cert), Some(key));
    }
    let (peer_cert, peer_key) = files("peer");
    deployment.tls = Some(TlsConfig { ca, peer_cert: Some(peer_cert), peer_key: Some(peer_key) });
    true
}

/// The key at `path`, made (0600) if there is none.
fn key(path: &Path) -> anyhow::Result<KeyPair> {
    if path.exists() {
        crate::private_file::ensure_private(path)?;
        let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return KeyPair::from_pem(&pem).with_context(|| format!("{} is not a private key", path.display()));
    }
    let key = KeyPair::generate()?;
    crate::private_file::create(path, key.serialize_pem().as_bytes())?;
    Ok(key)
}

/// `<name>.pem` and `<name>.key` in `dir`, issued by `ca` if not there yet.
fn issued(
    dir: &Path,
    name: &str,
    params: &CertificateParams,
    ca: &Issuer<'_, &KeyPair>,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let key = key(&key_path)?;
    if !cert.exists() {
        write_public(&cert, &params.signed_by(&key, ca)?.pem())?;
    }
    Ok((cert, key_path))
}

fn write_public(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))
}

/// The CA's parameters; the same on every start, so its key alone
/// (re)makes the issuer of the certificates it signed before.
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = named("Tern local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    valid_from_now(&mut params);
    Ok(params)
}

fn leaf_params(names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = named("Tern");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    valid_from_now(&mut params);
    Ok(params)
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn valid_from_now(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    (params.not_before, params.not_after) = (now - time::Duration::days(1), now + VALID_FOR);
}

/// The names a region's certificate must cover: loopback, its listen
/// address, and the host of its endpoint.
fn names_of(region: &RegionConfig) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let listen = region.listen.ip();
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    let endpoint = region.endpoint.as_deref().and_then(|e| reqwest::Url::parse(e).ok());
    let host = endpoint.as_ref().and_then(reqwest::Url::host_str);
    names.extend(host.map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned()));
    names.sort();
    names.dedup();
    names
}
