//! Which key protects each object, decided as S3 decides it: the request's
//! SSE headers, else the bucket's default encryption, else SSE-S3.
//!
//! - SSE-S3: a fresh data key per blob, wrapped under the region's key.
//! - SSE-KMS: one data key per object from KMS `GenerateDataKey`, called on
//!   the requester's behalf through `s3.<region>.amazonaws.com` with the
//!   object ARN as context; reads call `Decrypt` the same way. With an S3
//!   Bucket Key, KMS is called once per requester, key and bucket per
//!   [`BUCKET_KEY_PERIOD`], and each object's data key is derived from the
//!   bucket key and a per-object salt.
//! - SSE-C: a fresh data key per blob, wrapped under the customer's key,
//!   which is never stored (see [`crate::customer_key`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s3s::dto::{GetBucketEncryptionOutput, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration};
use s3s::dto::{ServerSideEncryption, ServerSideEncryptionRule};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tern_crypto::{Key256, wrap};
use tern_iam::policy::Principal;
use tern_kms::{Caller, Kms, KmsError};
use tern_store::{ObjectAttrs, SseAlgorithm};

use crate::body::{base64_decode, base64_encode};
use crate::customer_key::{CustomerKey, Fingerprints};
use crate::error::{internal, with_status};
use crate::region::Region;
use crate::sse::{DataKey, KeyOpener, KnownKey, WrappedKeys};
use crate::stored::StoredConfig as _;

/// How long a bucket key serves before KMS is asked for a new one.
pub const BUCKET_KEY_PERIOD: Duration = Duration::from_mins(5);
const BUCKET_KEY_MAGIC: &[u8; 4] = b"TBK1";
const SALT_LEN: usize = 32;

/// The encryption services of one region.
pub struct Sse {
    region_keys: Arc<WrappedKeys>,
    pub(crate) kms: Arc<Kms>,
    bucket_keys: BucketKeys,
    pub(crate) fingerprints: Fingerprints,
}

impl Sse {
    /// `kek` is the region's SSE-S3 key; `kms` the region's KMS.
    #[must_use]
    pub fn new(kek: Key256, kms: Arc<Kms>) -> Self {
        let fingerprints = Fingerprints::new(&kek);
        Self { region_keys: Arc::new(WrappedKeys::region(kek)), kms, bucket_keys: BucketKeys::default(), fingerprints }
    }
}

/// What a write asked for in its SSE headers.
pub(crate) struct Requested {
    pub sse: Option<String>,
    pub kms_key_id: Option<String>,
    /// Base64 JSON, as `x-amz-server-side-encryption-context` carries it.
    pub context: Option<String>,
    pub bucket_key: Option<bool>,
    pub customer: Option<CustomerKey>,
}

impl Requested {
    /// Whether the request named no encryption at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.sse.is_none() && self.kms_key_id.is_none() && self.customer.is_none() && self.bucket_key.is_none()
    }
}

/// `Requested` from an input with the full set of SSE fields, or the
/// error of an invalid SSE-C key. A macro because s3s's inputs share these
/// fields but no trait.
macro_rules! requested_encryption {
    ($input:expr) => {{
        let input = &$input;
        $crate::customer_key::customer_key!(input).map(|customer| $crate::encryption::Requested {
            sse: input.server_side_encryption.as_ref().map(|s| s.as_str().to_owned()),
            kms_key_id: input.ssekms_key_id.clone(),
            context: input.ssekms_encryption_context.clone(),
            bucket_key: input.bucket_key_enabled,
            customer,
        })
    }};
}
pub(crate) use requested_encryption;

/// Fills the SSE response headers every object output has; an SSE-C
/// object echoes the MD5 of the key the request brought (`$customer`).
macro_rules! fill_sse {
    ($out:expr, $attrs:expr, $customer:expr) => {{
        let attrs = &$attrs;
        $out.server_side_encryption = $crate::wire::sse_dto(attrs.encryption);
        $out.ssekms_key_id = attrs.kms_key_arn.clone();
        $out.bucket_key_enabled = attrs.bucket_key.then_some(true);
        if attrs.customer_key_fingerprint.is_some()
            && let Some(customer) = $customer
        {
            let customer: &$crate::customer_key::CustomerKey = customer;
            $out.sse_customer_algorithm = Some("AES256".to_owned());
            $out.sse_customer_key_md5 = Some(customer.md5.clone());
        }
    }};
}
pub(crate) use fill_sse;

/// A bucket's default encryption, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEncryption {
    pub algorithm: SseAlgorithm,
    pub kms_key_id: Option<String>,
    pub bucket_key: bool,
}

impl BucketEncryption {
    /// The default a `ServerSideEncryptionConfiguration` sets, validated as
    /// `PutBucketEncryption` validates it.
    pub fn from_config(config: &ServerSideEncryptionConfiguration) -> S3Result<Self> {
        let [rule] = config.rules.as_slice() else {
            return Err(s3_error!(MalformedXML, "Exactly one encryption rule is allowed."));
        };
        let default = rule.apply_server_side_encryption_by_default.as_ref();
        let algorithm = default.map_or(Ok(SseAlgorithm::Aes256), |d| match d.sse_algorithm.as_str() {
            "aws:kms:dsse" => Err(s3_error!(NotImplemented, "DSSE-KMS is not supported by Tern")),
            other => SseAlgorithm::named(other).ok_or_else(crate::error::malformed_xml),
        })?;
        let kms_key_id = default.and_then(|d| d.kms_master_key_id.clone());
        if algorithm == SseAlgorithm::Aes256 && kms_key_id.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
            ));
        }
        Ok(Self { algorithm, kms_key_id, bucket_key: rule.bucket_key_enabled.unwrap_or(false) })
    }
}

/// How one write is protected.
pub(crate) enum Plan {
    Region,
    Kms { key_id: Option<String>, context: Option<String>, bucket_key: bool },
    Customer(CustomerKey),
}

fn plan(requested: Requested, default: Option<BucketEncryption>) -> S3Result<Plan> {
    if let Some(customer) = requested.customer {
        if requested.sse.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
            ));
        }
        return Ok(Plan::Customer(customer));
    }
    let kms_default = default.filter(|d| d.algorithm == SseAlgorithm::AwsKms);
    let requested_sse = requested.sse.as_deref().map(sse_algorithm).transpose()?;
    match requested_sse.or_else(|| kms_default.as_ref().map(|d| d.algorithm)) {
        None | Some(SseAlgorithm::Aes256) => {
            if requested.kms_key_id.is_some() || requested.context.is_some() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Server Side Encryption with AWS KMS managed key requires HTTP header \
                     x-amz-server-side-encryption : aws:kms"
                ));
            }
            Ok(Plan::Region)
        }
        Some(SseAlgorithm::AwsKms) => Ok(Plan::Kms {
            key_id: requested.kms_key_id.or_else(|| kms_default.as_ref().and_then(|d| d.kms_key_id.clone())),
            context: requested.context,
            bucket_key: requested.bucket_key.unwrap_or_else(|| kms_default.is_some_and(|d| d.bucket_key)),
        }),
    }
}

/// The algorithm an `x-amz-server-side-encryption` value asks for.
fn sse_algorithm(value: &str) -> S3Result<SseAlgorithm> {
    match SseAlgorithm::named(value) {
        Some(algorithm) => Ok(algorithm),
        None if value == "aws:kms:dsse" => Err(s3_error!(NotImplemented, "DSSE-KMS is not supported by Tern")),
        None => Err(s3_error!(InvalidArgument, "Server Side Encryption with {value} is not supported")),
    }
}

/// S3's answer when KMS refuses, as AWS S3 gives it.
fn kms_error(e: KmsError) -> S3Error {
    let KmsError { code, message, .. } = e;
    match code {
        "AccessDeniedException" => s3_error!(AccessDenied, "{message}"),
        "NotFoundException" | "DisabledException" | "KMSInvalidStateException" | "InvalidArnException" => with_status(
            S3Error::with_message(S3ErrorCode::Custom(format!("KMS.{code}").into()), message),
            http::StatusCode::BAD_REQUEST,
        ),
        _ => {
            tracing::error!(code, %message, "KMS failed on behalf of S3");
            s3_error!(InternalError, "KMS could not complete the request.")
        }
    }
}

/// Whether S3's answer for a KMS refusal may change once this front-end
/// has caught up (see [`kms_error`]).
fn may_be_behind(e: &S3Error) -> bool {
    match e.code() {
        S3ErrorCode::AccessDenied => true,
        S3ErrorCode::Custom(code) => code.starts_with("KMS."),
        _ => false,
    }
}

fn clear_encryption(attrs: &mut ObjectAttrs) {
    attrs.encryption = None;
    attrs.kms_key_arn = None;
    attrs.kms_context = None;
    attrs.bucket_key = false;
    attrs.kms_data_key = None;
    attrs.customer_key_fingerprint = None;
}

/// The encryption context S3 binds: the caller's, if any, plus `aws:s3:arn`.
fn context(requested: Option<&str>, arn: String) -> S3Result<BTreeMap<String, String>> {
    let invalid = || s3_error!(InvalidArgument, "The encryption context provided is not valid base64-encoded JSON.");
    let mut context: BTreeMap<String, String> = match requested {
        Some(text) => serde_json::from_slice(&base64_decode(text).ok_or_else(invalid)?).map_err(|_| invalid())?,
        None => BTreeMap::new(),
    };
    context.insert("aws:s3:arn".to_owned(), arn);
    Ok(context)
}

fn encode_context(context: &BTreeMap<String, String>) -> String {
    base64_encode(serde_json::to_string(context).expect("a map of strings serializes").as_bytes())
}

fn decode_context(attrs: &ObjectAttrs) -> S3Result<BTreeMap<String, String>> {
    let text = attrs.kms_context.as_deref().and_then(base64_decode).ok_or_else(|| internal("stored context"))?;
    serde_json::from_slice(&text).map_err(internal)
}

impl Region {
    /// Runs `call` (which asks KMS as a caller); if it is refused for
    /// something that may be only a moment old (a permission granted in
    /// another region, a key made or enabled by another front-end of this
    /// one), retries once after catching up with IAM and the key store.
    pub(crate) async fn fresh_if_denied<T>(&self, call: impl Fn() -> S3Result<T>) -> S3Result<T> {
        match call() {
            Err(e) if may_be_behind(&e) => {
                if let Err(why) = self.iam.refresh().await {
                    tracing::debug!(error = %why, "IAM directory not refreshed before a KMS denial");
                }
                self.sse.kms.catch_up().await;
                call()
            }
            other => other,
        }
    }

    /// Who KMS sees when S3 calls it for `who`'s request (S3 reaches KMS
    /// over a secure channel, as on AWS).
    pub(crate) fn kms_caller(&self, who: &Principal) -> Caller {
        Caller::new(who.clone()).via(s3_via(&self.name))
    }

    pub(crate) async fn bucket_encryption(&self, bucket: &str) -> S3Result<Option<BucketEncryption>> {
        BucketEncryption::load(&*self.meta, bucket).await
    }

    /// How a write to `bucket` is protected, from its headers and the bucket default.
    pub(crate) async fn plan_encryption(&self, bucket: &str, requested: Requested) -> S3Result<Plan> {
        let default = self.bucket_encryption(bucket).await?;
        plan(requested, default)
    }

    /// The data key of a new object or upload at `bucket`/`key`; records in
    /// `attrs` how it is protected.
    pub(crate) async fn data_key_for(
        &self,
        plan: &Plan,
        bucket: &str,
        key: &str,
        attrs: &mut ObjectAttrs,
        who: &Principal,
    ) -> S3Result<DataKey> {
        clear_encryption(attrs);
        match plan {
            Plan::Region => {
                attrs.encryption = Some(SseAlgorithm::Aes256);
                self.sse.region_keys.new_data_key().map_err(internal)
            }
            Plan::Customer(customer) => {
                attrs.encryption = None;
                attrs.customer_key_fingerprint = Some(self.sse.fingerprints.of(customer));
                WrappedKeys::customer(customer.key.clone()).new_data_key().map_err(internal)
            }
            Plan::Kms { key_id, context: requested, bucket_key } => {
                let key_id = match key_id {
                    Some(id) => id.clone(),
                    None => self.sse.kms.managed_key("s3").await.map_err(kms_error)?,
                };
                let arn =
                    if *bucket_key { format!("arn:aws:s3:::{bucket}") } else { format!("arn:aws:s3:::{bucket}/{key}") };
                let context = context(requested.as_deref(), arn)?;
                let (data_key, key_arn) = self
                    .fresh_if_denied(|| {
                        if *bucket_key {
                            self.bucket_key_data_key(&key_id, &context, who)
                        } else {
                            self.kms_data_key(&key_id, &context, who)
                        }
                    })
                    .await?;
                attrs.encryption = Some(SseAlgorithm::AwsKms);
                attrs.kms_key_arn = Some(key_arn);
                attrs.kms_context = Some(encode_context(&context));
                attrs.bucket_key = *bucket_key;
                attrs.kms_data_key = Some(base64_encode(&data_key.wrapped));
                Ok(data_key)
            }
        }
    }

    fn kms_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
        who: &Principal,
    ) -> S3Result<(DataKey, String)> {
        let key = Key256::random().map_err(internal)?;
        let (blob, arn) = self
            .sse
            .kms
            .seal_for(&self.kms_caller(who), "GenerateDataKey", key_id, context, key.expose())
            .map_err(kms_error)?;
        Ok((DataKey { key, wrapped: blob }, arn))
    }

    fn bucket_key_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
        who: &Principal,
    ) -> S3Result<(DataKey, String)> {
        let caller = self.kms_caller(who);
        let (bucket_key, blob, arn) = self.sse.bucket_keys.for_write(&self.sse.kms, &caller, key_id, context)?;
        let mut salt = [0u8; SALT_LEN];
        tern_crypto::fill_random(&mut salt).map_err(internal)?;
        let key = object_key(&bucket_key, &salt);
        let mut wrapped = Vec::with_capacity(6 + blob.len() + SALT_LEN);
        wrapped.extend_from_slice(BUCKET_KEY_MAGIC);
        wrapped.extend_from_slice(&u16::try_from(blob.len()).map_err(internal)?.to_be_bytes());
        wrapped.extend_from_slice(&blob);
        wrapped.extend_from_slice(&salt);
        Ok((DataKey { key, wrapped }, arn))
    }

    /// The data key of a stored SSE-KMS object or upload, through KMS.
    fn stored_kms_key(&self, attrs: &ObjectAttrs, wrapped: Vec<u8>, who: &Principal) -> S3Result<DataKey> {
        let context = decode_context(attrs)?;
        let caller = self.kms_caller(who);
        if !attrs.bucket_key {
            let (plain, _) = self.sse.kms.open_for(&caller, "Decrypt", &wrapped, &context, None).map_err(kms_error)?;
            let key = Key256::from_slice(&plain).ok_or_else(|| internal("data key length"))?;
            return Ok(DataKey { key, wrapped });
        }
        let (blob, salt) = split_bucket_key(&wrapped).ok_or_else(|| internal("bucket key envelope"))?;
        let bucket_key = self.sse.bucket_keys.for_read(&self.sse.kms, &caller, blob, &context)?;
        Ok(DataKey { key: object_key(&bucket_key, salt), wrapped })
    }

    /// Recovers the data keys of a stored version for a read; `customer` is
    /// the request's SSE-C key, which an SSE-C version requires.
    pub(crate) async fn read_keys(
        &self,
        version: &tern_store::VersionRecord,
        customer: Option<&CustomerKey>,
        who: &Principal,
    ) -> S3Result<Arc<dyn KeyOpener>> {
        let attrs = &version.attrs;
        if let Some(customer) = self.check_customer(attrs, &version.data, customer).await? {
            return Ok(Arc::new(WrappedKeys::customer(customer.key.clone())));
        }
        match attrs.kms_data_key.as_deref() {
            Some(text) => {
                let wrapped = base64_decode(text).ok_or_else(|| internal("stored data key"))?;
                let key = self.fresh_if_denied(|| self.stored_kms_key(attrs, wrapped.clone(), who)).await?;
                Ok(Arc::new(KnownKey(key)))
            }
            None => Ok(Arc::clone(&self.sse.region_keys) as Arc<dyn KeyOpener>),
        }
    }

    /// The data key a part of an upload is sealed with: the upload's KMS
    /// data key, or a fresh one under the region or customer key.
    pub(crate) fn part_key(
        &self,
        upload: &ObjectAttrs,
        customer: Option<&CustomerKey>,
        who: &Principal,
    ) -> S3Result<DataKey> {
        if let Some(customer) = self.check_upload_customer(upload, customer)? {
            return WrappedKeys::customer(customer.key.clone()).new_data_key().map_err(internal);
        }
        match upload.kms_data_key.as_deref() {
            Some(text) => {
                self.stored_kms_key(upload, base64_decode(text).ok_or_else(|| internal("stored data key"))?, who)
            }
            None => self.sse.region_keys.new_data_key().map_err(internal),
        }
    }

    /// For a replica that arrives sealed under a multi-region key: checks
    /// that `who` may use the rule's `ReplicaKmsKeyID` here exactly as the
    /// re-encrypting path would (`kms:GenerateDataKey`), and that it is the
    /// same key the data key was wrapped with; returns its ARN here, which the
    /// replica reports.
    pub(crate) fn adopt_kms_data_key(
        &self,
        attrs: &ObjectAttrs,
        replica_key: &str,
        who: &Principal,
    ) -> S3Result<String> {
        let context = decode_context(attrs)?;
        let wrapped =
            attrs.kms_data_key.as_deref().and_then(base64_decode).ok_or_else(|| internal("stored data key"))?;
        let blob = if attrs.bucket_key { split_bucket_key(&wrapped).map(|(b, _)| b.to_vec()) } else { Some(wrapped) };
        let header =
            blob.and_then(|b| tern_crypto::kms_blob::header(&b).ok()).ok_or_else(|| internal("data key blob"))?;
        let (key_id, arn) =
            self.sse.kms.check(&self.kms_caller(who), "GenerateDataKey", replica_key, &context).map_err(kms_error)?;
        if key_id != header.key_id {
            return Err(kms_error(KmsError::not_found(format!(
                "{replica_key} is not the multi-Region key {} the object is encrypted under",
                header.key_id
            ))));
        }
        Ok(arn)
    }

    pub(crate) async fn put_bucket_encryption(
        &self,
        bucket: &str,
        config: ServerSideEncryptionConfiguration,
    ) -> S3Result<()> {
        self.bucket(bucket).await?;
        BucketEncryption::from_config(&config)?.store(&*self.meta, bucket).await
    }

    pub(crate) async fn get_bucket_encryption(&self, bucket: &str) -> S3Result<GetBucketEncryptionOutput> {
        self.bucket(bucket).await?;
        let stored = self.bucket_encryption(bucket).await?.unwrap_or(BucketEncryption {
            algorithm: SseAlgorithm::Aes256,
            kms_key_id: None,
            bucket_key: false,
        });
        let rule = ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                sse_algorithm: ServerSideEncryption::from(stored.algorithm.as_str().to_owned()),
                kms_master_key_id: stored.kms_key_id,
            }),
            bucket_key_enabled: Some(stored.bucket_key),
        };
        Ok(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration { rules: vec![rule] }),
        })
    }

    pub(crate) async fn delete_bucket_encryption(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        BucketEncryption::remove(&*self.meta, bucket).await
    }
}

/// `kms:ViaService` of S3's calls to KMS in `region`.
pub(crate) fn s3_via(region: &str) -> String {
    format!("s3.{region}.amazonaws.com")
}

fn object_key(bucket_key: &Key256, salt: &[u8]) -> Key256 {
    wrap::derive(bucket_key, &[b"tern/s3/bucket-key/object|".as_slice(), salt].concat())
}

/// The bucket key's KMS blob and the object's salt, from a stored envelope.
fn split_bucket_key(wrapped: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = wrapped.strip_prefix(BUCKET_KEY_MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() == len + SALT_LEN).then(|| rest.split_at(len))
}

/// Bucket keys per requester, KMS key and context, for writes; and opened
/// bucket keys per requester and blob, for reads. Entries live for one
/// [`BUCKET_KEY_PERIOD`]; permissions are therefore rechecked by KMS once
/// per period per requester, as with AWS's bucket keys.
#[derive(Default)]
struct BucketKeys {
    /// By (requester ARN, KMS key as named, encoded context).
    writing: Mutex<HashMap<(String, String, String), WriteKey>>,
    /// By (requester ARN, bucket key blob).
    reading: Mutex<HashMap<(String, Vec<u8>), ReadKey>>,
}

#[derive(Clone)]
struct WriteKey {
    key: Key256,
    blob: Vec<u8>,
    arn: String,
    at: Instant,
}

struct ReadKey {
    key: Key256,
    at: Instant,
}

impl BucketKeys {
    fn for_write(
        &self,
        kms: &Kms,
        caller: &Caller,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> S3Result<(Key256, Vec<u8>, String)> {
        let slot = (caller.principal.caller_arn().to_owned(), key_id.to_owned(), encode_context(context));
        let now = Instant::now();
        let mut writing = self.writing.lock().expect("bucket key cache lock");
        if let Some(entry) = writing.get(&slot).filter(|e| now.duration_since(e.at) < BUCKET_KEY_PERIOD) {
            return Ok((entry.key.clone(), entry.blob.clone(), entry.arn.clone()));
        }
        let key = Key256::random().map_err(internal)?;
        let (blob, arn) = kms.seal_for(caller, "GenerateDataKey", key_id, context, key.expose()).map_err(kms_error)?;
        writing.retain(|_, entry| now.duration_since(entry.at) < BUCKET_KEY_PERIOD);
        writing.insert(slot, WriteKey { key: key.clone(), blob: blob.clone(), arn: arn.clone(), at: now });
        Ok((key, blob, arn))
    }

    fn for_read(
        &self,
        kms: &Kms,
        caller: &Caller,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> S3Result<Key256> {
        let slot = (caller.principal.caller_arn().to_owned(), blob.to_vec());
        let now = Instant::now();
        let mut reading = self.reading.lock().expect("bucket key cache lock");
        if let Some(entry) = reading.get(&slot).filter(|e| now.duration_since(e.at) < BUCKET_KEY_PERIOD) {
            return Ok(entry.key.clone());
        }
        let (plain, _) = kms.open_for(caller, "Decrypt", blob, context, None).map_err(kms_error)?;
        let key = Key256::from_slice(&plain).ok_or_else(|| internal("bucket key length"))?;
        reading.retain(|_, entry| now.duration_since(entry.at) < BUCKET_KEY_PERIOD);
        reading.insert(slot, ReadKey { key: key.clone(), at: now });
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(sse: Option<&str>, key: Option<&str>) -> Requested {
        Requested {
            sse: sse.map(str::to_owned),
            kms_key_id: key.map(str::to_owned),
            context: None,
            bucket_key: None,
            customer: None,
        }
    }

    fn kms_default(key: &str, bucket_key: bool) -> BucketEncryption {
        BucketEncryption { algorithm: SseAlgorithm::AwsKms, kms_key_id: Some(key.into()), bucket_key }
    }

    #[test]
    fn headers_win_over_the_bucket_default() {
        assert!(matches!(plan(requested(None, None), None).unwrap(), Plan::Region));
        assert!(matches!(plan(requested(Some("AES256"), None), Some(kms_default("k", true))).unwrap(), Plan::Region));
        let Plan::Kms { key_id, bucket_key, .. } = plan(requested(None, None), Some(kms_default("k", true))).unwrap()
        else {
            panic!("the bucket default applies");
        };
        assert_eq!((key_id.as_deref(), bucket_key), (Some("k"), true));
        let Plan::Kms { key_id, .. } =
            plan(requested(Some("aws:kms"), Some("x")), Some(kms_default("k", false))).unwrap()
        else {
            panic!("aws:kms requested");
        };
        assert_eq!(key_id.as_deref(), Some("x"));
        let Plan::Kms { key_id, .. } = plan(requested(Some("aws:kms"), None), None).unwrap() else { panic!() };
        assert_eq!(key_id, None, "no key id means the AWS managed key");
    }

    #[test]
    fn contradictory_headers_are_refused() {
        for (sse, key) in [(None, Some("k")), (Some("AES256"), Some("k")), (Some("rot13"), None)] {
            assert!(plan(requested(sse, key), None).is_err(), "{sse:?} {key:?}");
        }
    }

    #[test]
    fn bucket_key_envelopes_round_trip_and_refuse_garbage() {
        let mut wrapped = BUCKET_KEY_MAGIC.to_vec();
        wrapped.extend_from_slice(&3u16.to_be_bytes());
        wrapped.extend_from_slice(b"abc");
        wrapped.extend_from_slice(&[9; SALT_LEN]);
        assert_eq!(split_bucket_key(&wrapped), Some((&b"abc"[..], &[9u8; SALT_LEN][..])));
        assert_eq!(split_bucket_key(&wrapped[..wrapped.len() - 1]), None);
        assert_eq!(split_bucket_key(b"TBK1"), None);
    }
}
