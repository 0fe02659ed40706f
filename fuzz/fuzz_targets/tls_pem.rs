#![no_main]
//! The certificate and key files a deployment names are read by one parser:
//! any bytes must parse or be refused with a reason, never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match tern_core::pem::certificates(data) {
        Ok(certs) => assert!(!certs.is_empty(), "a file of certificates holds one"),
        Err(reason) => assert!(!reason.is_empty(), "a refusal says why"),
    }
    if let Err(reason) = tern_core::pem::private_key(data) {
        assert!(!reason.is_empty(), "a refusal says why");
    }
});
