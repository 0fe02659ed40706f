#![no_main]
//! Every request's Authorization header and query pass through these parsers
//! before any signature is checked: the credential scope, the decoded query,
//! and the `SigV2` signature, date and string to sign.

use tern_sigv4::query::Query;
use tern_sigv4::{scope, v2};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = scope::from_authorization(text);
    let Ok(query) = Query::parse(text) else { return };
    let _ = scope::from_query(&query);
    let _ = scope::presigned_too_long(&query);
    let headers = [("date", text), ("x-amz-meta-a", text), ("content-type", text)];
    if let Some(signed) = v2::Signed::of(Some(text), &query) {
        let request = v2::V2Request { method: "GET", path: text, query: &query, headers: &headers };
        let _ = v2::check_time(&signed, &request, time::OffsetDateTime::UNIX_EPOCH);
        let _ = v2::verify(&signed, &request, "secret");
    }
});
