//! The PEM files a deployment names (certificates, private keys), read from
//! their bytes, so the one place that parses them is fuzzed
//! (`fuzz/fuzz_targets/tls_pem.rs`). Whether a key matches its certificate
//! is rustls's to say, when the region builds its TLS from them.

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate of a PEM file, in order; at least one.
///
/// # Errors
/// A section that is not valid PEM, or no certificate at all.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no certificate".to_owned());
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// No private key, or one that is not valid PEM.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        assert!(certificates(b"").unwrap_err().contains("no certificate"));
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(certificates(bad).is_err());
        assert!(private_key(b"-----BEGIN PRIVATE KEY-----\n").is_err());
        assert!(private_key(b"").is_err());
    }
}
