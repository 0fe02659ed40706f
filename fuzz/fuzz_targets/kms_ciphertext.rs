#![no_main]
//! KMS ciphertext blobs and sealed transport messages arrive from callers
//! and peers: any bytes must be refused cleanly, never panic, never open.

use std::collections::BTreeMap;

use tern_crypto::Key256;
use tern_crypto::kms_blob;
use tern_crypto::transport::TransportKey;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let material = Key256::from_bytes([3; 32]);
    let context: BTreeMap<String, String> = [("aws:s3:arn".to_owned(), "arn:aws:s3:::b".to_owned())].into();
    if let Ok(header) = kms_blob::header(data) {
        assert_eq!(header.key_id.len(), kms_blob::KEY_ID_LEN);
    }
    assert!(kms_blob::decrypt(data, &material, &context).is_err(), "forged blob must never authenticate");
    let transport = TransportKey::from_seed(&material);
    let psk = tern_crypto::transport::peer_secret("deployment root secret");
    assert!(transport.open(&psk, b"kms material v2|mrk-x|1", data).is_err(), "forged transport message must never open");
    assert!(tern_crypto::wrap::open(&material, b"purpose", data).is_err(), "forged seals must never open");
});
