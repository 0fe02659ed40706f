#![no_main]
//! The credential scope parser sees every request's Authorization header and query.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tern_sigv4::scope::from_authorization(text);
        let _ = tern_sigv4::scope::from_query(text);
    }
});
