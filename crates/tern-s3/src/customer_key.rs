//! SSE-C: the customer's key arrives with every request and is never
//! stored. To recognise it, an object keeps an HMAC-SHA256 of it under a
//! secret of this region, as AWS keeps a salted HMAC: never a plain hash
//! that anyone holding the metadata could test guessed keys against.
//!
//! A replica written by replication cannot carry this region's HMAC (the
//! key never travels), so it is recognised the way decryption would be:
//! its data key must unwrap under the key offered. Objects written before
//! HMACs existed keep their MD5 and are still recognised by it.

use s3s::{S3Result, s3_error};
use tern_crypto::Key256;
use tern_crypto::mac::Mac;
use tern_crypto::segments::Header;
use tern_store::{ObjectAttrs, ObjectData};

use crate::body::{base64_decode, base64_encode};
use crate::error::internal;
use crate::region::Region;
use crate::sse::{KeyOpener as _, WrappedKeys, read_header};

/// What an SSE-C replica stores instead of a fingerprint.
pub(crate) const REPLICA_FINGERPRINT: &str = "replica";
const HMAC_PREFIX: &str = "hmac-sha256:";
const FINGERPRINT_PURPOSE: &[u8] = b"tern/sse-c/fingerprint/v1";

/// An SSE-C key from the request headers, checked against its MD5.
#[derive(Clone)]
pub(crate) struct CustomerKey {
    pub(crate) key: Key256,
    /// The MD5 the request sent (and responses echo).
    pub(crate) md5: String,
}

/// Reads the SSE-C header trio; `None` if absent, an AWS error if malformed.
pub(crate) fn parse_customer_key(
    algorithm: Option<&String>,
    key: Option<&String>,
    md5: Option<&String>,
) -> S3Result<Option<CustomerKey>> {
    let (algorithm, key, md5) = match (algorithm, key, md5) {
        (None, None, None) => return Ok(None),
        (Some(a), Some(k), Some(m)) => (a, k, m),
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client \
                 calculated MD5 of the secret key."
            ));
        }
    };
    if algorithm != "AES256" {
        return Err(s3_error!(
            InvalidEncryptionAlgorithmError,
            "The Encryption request you specified is not valid. Supported value: AES256."
        ));
    }
    let bytes = zeroize::Zeroizing::new(
        base64_decode(key)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| s3_error!(InvalidArgument, "The secret key was invalid for the specified algorithm."))?,
    );
    let computed = base64_encode(&md5_of(&bytes));
    if computed != *md5 {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    let key = Key256::from_slice(&bytes).expect("32 bytes");
    Ok(Some(CustomerKey { key, md5: computed }))
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use s3s::crypto::Checksum as _;
    let mut md5 = s3s::crypto::Md5::new();
    md5.update(bytes);
    md5.finalize()
}

/// The SSE-C key of an input with the `sse_customer_*` trio.
macro_rules! customer_key {
    ($input:expr) => {
        $crate::customer_key::parse_customer_key(
            $input.sse_customer_algorithm.as_ref(),
            $input.sse_customer_key.as_ref(),
            $input.sse_customer_key_md5.as_ref(),
        )
    };
}
pub(crate) use customer_key;

/// The SSE-C key of a copy's source (`x-amz-copy-source-server-side-encryption-customer-*`).
macro_rules! copy_source_customer_key {
    ($input:expr) => {
        $crate::customer_key::parse_customer_key(
            $input.copy_source_sse_customer_algorithm.as_ref(),
            $input.copy_source_sse_customer_key.as_ref(),
            $input.copy_source_sse_customer_key_md5.as_ref(),
        )
    };
}
pub(crate) use copy_source_customer_key;

/// The region's SSE-C fingerprints.
pub(crate) struct Fingerprints {
    mac: Mac,
}

impl Fingerprints {
    /// Fingerprints under a key derived from the region's SSE-S3 key.
    pub(crate) fn new(region_kek: &Key256) -> Self {
        Self { mac: Mac::derived(region_kek, FINGERPRINT_PURPOSE) }
    }

    /// What an object written here with `customer` stores.
    pub(crate) fn of(&self, customer: &CustomerKey) -> String {
        format!("{HMAC_PREFIX}{}", base64_encode(&self.mac.sign(customer.key.expose())))
    }

    /// Whether `customer` is the key `stored` recognises; `None` when only
    /// its data key can tell (a replica).
    fn matches(&self, stored: &str, customer: &CustomerKey) -> Option<bool> {
        if stored == REPLICA_FINGERPRINT {
            return None;
        }
        let matches = match stored.strip_prefix(HMAC_PREFIX) {
            Some(tag) => self.mac.verify(customer.key.expose(), &base64_decode(tag).unwrap_or_default()),
            // Written before fingerprints were keyed: the MD5 is not secret, the comparison still constant-time.
            None => subtle::ConstantTimeEq::ct_eq(customer.md5.as_bytes(), stored.as_bytes()).into(),
        };
        Some(matches)
    }
}

/// The request's key must be there for an SSE-C object and absent otherwise.
fn required<'s, 'c>(
    attrs: &'s ObjectAttrs,
    customer: Option<&'c CustomerKey>,
) -> S3Result<Option<(&'s str, &'c CustomerKey)>> {
    let Some(stored) = attrs.customer_key_fingerprint.as_deref() else {
        return match customer {
            Some(_) => Err(s3_error!(InvalidRequest, "The encryption parameters are not applicable to this object.")),
            None => Ok(None),
        };
    };
    let customer = customer.ok_or_else(|| {
        s3_error!(
            InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided \
             to retrieve the object."
        )
    })?;
    Ok(Some((stored, customer)))
}

fn wrong_key() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

impl Region {
    /// Checks a request's SSE-C key against a stored version (its `attrs`
    /// and `data`): required and matching for an SSE-C one, refused for any
    /// other. Returns it when the version is SSE-C.
    pub(crate) async fn check_customer<'a>(
        &self,
        attrs: &ObjectAttrs,
        data: &ObjectData,
        customer: Option<&'a CustomerKey>,
    ) -> S3Result<Option<&'a CustomerKey>> {
        let Some((stored, customer)) = required(attrs, customer)? else { return Ok(None) };
        let matches = match self.sse.fingerprints.matches(stored, customer) {
            Some(matches) => matches,
            None => self.unwraps(data, customer).await?,
        };
        if matches { Ok(Some(customer)) } else { Err(wrong_key()) }
    }

    /// As [`Self::check_customer`], for a multipart upload (always written
    /// in this region, so always with this region's fingerprint).
    pub(crate) fn check_upload_customer<'a>(
        &self,
        upload: &ObjectAttrs,
        customer: Option<&'a CustomerKey>,
    ) -> S3Result<Option<&'a CustomerKey>> {
        let Some((stored, customer)) = required(upload, customer)? else { return Ok(None) };
        match self.sse.fingerprints.matches(stored, customer) {
            Some(true) => Ok(Some(customer)),
            _ => Err(wrong_key()),
        }
    }

    /// Whether `customer` unwraps the data key in the first header of `data`.
    async fn unwraps(&self, data: &ObjectData, customer: &CustomerKey) -> S3Result<bool> {
        let header = match data {
            ObjectData::Inline(bytes) => Header::decode(bytes).map_err(|_| internal("SSE-C replica header"))?.0,
            ObjectData::Blobs(parts) => {
                let first = parts.first().ok_or_else(|| internal("an SSE-C replica without blobs"))?;
                read_header(&self.blobs, &first.blob).await.map_err(internal)?
            }
        };
        Ok(WrappedKeys::customer(customer.key.clone()).open(&header.wrapped_key).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CustomerKey {
        let bytes = [byte; 32];
        CustomerKey { key: Key256::from_bytes(bytes), md5: base64_encode(&md5_of(&bytes)) }
    }

    #[test]
    fn customer_keys_are_checked_against_their_md5() {
        let key = base64_encode(&[7u8; 32]);
        let md5 = base64_encode(&md5_of(&[7u8; 32]));
        let aes = "AES256".to_owned();
        assert!(parse_customer_key(Some(&aes), Some(&key), Some(&md5)).unwrap().is_some());
        let wrong = base64_encode(&[0u8; 16]);
        assert_eq!(
            parse_customer_key(Some(&aes), Some(&key), Some(&wrong)).err().unwrap().code().as_str(),
            "InvalidArgument"
        );
        assert!(parse_customer_key(Some(&aes), Some(&key), None).is_err());
        let short = base64_encode(&[7u8; 16]);
        assert!(parse_customer_key(Some(&aes), Some(&short), Some(&md5)).is_err());
    }

    #[test]
    fn fingerprints_are_keyed_per_region_and_old_md5s_still_match() {
        let here = Fingerprints::new(&Key256::from_bytes([1; 32]));
        let elsewhere = Fingerprints::new(&Key256::from_bytes([2; 32]));
        let stored = here.of(&key(7));
        assert!(stored.starts_with(HMAC_PREFIX) && !stored.contains(&key(7).md5));
        assert_ne!(stored, elsewhere.of(&key(7)), "a fingerprint means nothing without the region's secret");
        assert_eq!(here.matches(&stored, &key(7)), Some(true));
        assert_eq!(here.matches(&stored, &key(8)), Some(false));
        assert_eq!(here.matches(&key(7).md5, &key(7)), Some(true), "objects stored with an MD5 stay readable");
        assert_eq!(here.matches(REPLICA_FINGERPRINT, &key(7)), None);
    }
}
