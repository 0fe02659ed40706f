#![no_main]
//! An S3EC object's stored bytes are whatever the bucket holds: any bytes
//! fed to the streaming opener, in any chunking, must fail authentication
//! without panicking (a forgery that verified would be a break of GCM).

use bytes::BytesMut;
use tern_cse::cipher::GcmOpener;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, stored)) = data.split_first() else { return };
    let tag_at = stored.len().saturating_sub(16);
    let (ciphertext, tag) = stored.split_at(tag_at);
    let mut opener = GcmOpener::new(&[7; 32], &[1; 12], &[0x00, 0x73]);
    let mut plaintext = BytesMut::new();
    for piece in ciphertext.chunks(usize::from(split).max(1)) {
        opener.open(piece, &mut plaintext).expect("short messages are within GCM's limit");
    }
    assert_eq!(plaintext.len(), ciphertext.len());
    assert!(opener.verify(tag).is_err(), "forged content must never authenticate");
});
