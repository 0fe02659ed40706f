//! The JSON 1.1 side of KMS: reading requests, writing blobs and times.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;

use crate::error::{KmsError, KmsResult};

/// A request body as KMS reads it: an empty one is an empty request.
#[must_use]
pub fn request_body(body: &[u8]) -> &[u8] {
    if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body }
}

/// Reads a request body; an empty body is an empty request.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> KmsResult<T> {
    let body = request_body(body);
    serde_json::from_slice(body).map_err(|e| KmsError::serialization(format!("Could not read the request: {e}")))
}

/// A required member, or AWS's null-member validation error.
pub fn required<T>(value: Option<T>, field: &str) -> KmsResult<T> {
    value.ok_or_else(|| KmsError::missing(field))
}

#[must_use]
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Now, as the epoch seconds KMS timestamps carry.
#[must_use]
pub fn now() -> f64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    // Millisecond precision, as AWS returns; the cast is exact at that scale.
    #[allow(clippy::cast_precision_loss)]
    let millis = (nanos / 1_000_000) as f64;
    millis / 1000.0
}

pub const DAY: f64 = 86_400.0;

/// Blob members: base64 strings in JSON.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Optional blob members of requests, wiped when dropped (they may be
/// plaintext).
pub mod base64_opt {
    use serde::{Deserialize, Deserializer};
    use zeroize::Zeroizing;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<Vec<u8>>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::base64_bytes")] Vec<u8>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| Zeroizing::new(w.0)))
    }
}
