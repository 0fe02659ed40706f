#![no_main]
//! Stored object bytes are untrusted on read: a corrupted or crafted blob must
//! fail authentication, never panic or return bytes.

use tern_crypto::Key256;
use tern_crypto::segments::{Header, Opener, cipher_range};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((header, header_len)) = Header::decode(data) else { return };
    let body = &data[header_len..];
    let plain_len = body.len() as u64;
    let range = 0..plain_len;
    let _ = cipher_range(&range, plain_len);
    let mut opener = Opener::new(&Key256::from_bytes([7; 32]), &header, plain_len, &range);
    let produced = opener.push(body).map(|p| p.iter().map(|b| b.len()).sum::<usize>()).unwrap_or(0);
    assert_eq!(produced, 0, "forged ciphertext must never authenticate");
});
