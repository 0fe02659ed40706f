//! The audit records of calls that change a bucket's configuration:
//! written, and synced, before the answer goes out.

use s3s::{S3Request, S3Result};
use serde_json::{Map, Value, json};
use tern_audit::{Call, Durability, Record, Resource, Service, Source};
use tern_iam::policy::Principal;

use crate::region::Region;

/// The longest `Host` a record keeps (DNS names are at most 253 bytes).
const MAX_HOST: usize = 256;

/// The operations that change a bucket's configuration, by s3s's name:
/// CloudTrail's event name and the sub-resource its record marks.
const CONFIG_CHANGES: &[(&str, &str, Option<&str>)] = &[
    ("CreateBucket", "CreateBucket", None),
    ("DeleteBucket", "DeleteBucket", None),
    ("PutBucketVersioning", "PutBucketVersioning", Some("versioning")),
    ("PutBucketEncryption", "PutBucketEncryption", Some("encryption")),
    ("DeleteBucketEncryption", "DeleteBucketEncryption", Some("encryption")),
    ("PutBucketPolicy", "PutBucketPolicy", Some("policy")),
    ("DeleteBucketPolicy", "DeleteBucketPolicy", Some("policy")),
    ("PutPublicAccessBlock", "PutBucketPublicAccessBlock", Some("publicAccessBlock")),
    ("DeletePublicAccessBlock", "DeleteBucketPublicAccessBlock", Some("publicAccessBlock")),
    ("PutBucketReplication", "PutBucketReplication", Some("replication")),
    ("DeleteBucketReplication", "DeleteBucketReplication", Some("replication")),
    ("PutBucketLifecycleConfiguration", "PutBucketLifecycle", Some("lifecycle")),
    ("DeleteBucketLifecycle", "DeleteBucketLifecycle", Some("lifecycle")),
];

/// The id an S3 request is answered with (`x-amz-request-id`), which its
/// audit record carries too: set by the server on every S3 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id, shaped as AWS's (16 upper-case hex digits).
    #[must_use]
    pub fn new() -> Self {
        Self(format!("{:016X}", rand::random::<u64>()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// A configuration call, as its record names it.
pub struct ConfigCall<'a> {
    name: &'static str,
    bucket: &'a str,
    subresource: Option<&'static str>,
    /// What else the record keeps of the request (never object data or keys).
    details: Map<String, Value>,
}

impl<'a> ConfigCall<'a> {
    /// The call of s3s operation `operation` on `bucket`, if it changes a
    /// bucket's configuration.
    #[must_use]
    pub fn of(operation: &str, bucket: &'a str) -> Option<Self> {
        let (_, name, subresource) = CONFIG_CHANGES.iter().find(|(op, _, _)| *op == operation)?;
        Some(Self { name, bucket, subresource: *subresource, details: Map::new() })
    }

    /// As [`ConfigCall::of`], for an operation known to be one.
    pub(crate) fn new(operation: &str, bucket: &'a str) -> Self {
        Self::of(operation, bucket).unwrap_or_else(|| panic!("{operation} is not a configuration change"))
    }

    pub(crate) fn with(mut self, member: &str, value: Value) -> Self {
        self.details.insert(member.to_owned(), value);
        self
    }
}

impl Region {
    /// Records `call`, which `req` made and which ended in `result`, and
    /// passes `result` on once the record is on disk. A change that cannot
    /// be recorded is not reported as a success.
    pub(crate) async fn audited<I, T>(
        &self,
        req: &S3Request<I>,
        call: ConfigCall<'_>,
        result: S3Result<T>,
    ) -> S3Result<T> {
        let anonymous = Principal::anonymous();
        let principal = req.extensions.get::<Principal>().unwrap_or(&anonymous);
        let outcome = result.as_ref().map(drop).map_err(|e| (e.code().as_str(), e.message().unwrap_or_default()));
        let request_id = req.extensions.get::<RequestId>();
        match self.audit_config_call(principal, (&req.headers, request_id), call, outcome).await {
            Ok(()) => result,
            Err(_) => Err(s3s::S3Error::with_message(s3s::S3ErrorCode::InternalError, tern_audit::record::UNRECORDED)),
        }
    }

    /// Records `call` by `principal`, sent with `headers` and answered
    /// with `request_id`, that ended in `outcome` (refusals too), synced
    /// before the answer goes out.
    ///
    /// # Errors
    /// If the record could not be made durable.
    pub async fn audit_config_call(
        &self,
        principal: &Principal,
        (headers, request_id): (&http::HeaderMap, Option<&RequestId>),
        call: ConfigCall<'_>,
        outcome: tern_audit::record::Outcome<'_>,
    ) -> Result<(), tern_audit::NotRecorded> {
        if !self.audit.is_enabled() {
            return Ok(());
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let source = Source::client(principal.origin.source_ip, header("user-agent"));
        let audited = Call {
            service: Service::S3,
            name: call.name,
            region: &self.name,
            account: &self.account_id,
            principal,
            source,
            read_only: false,
        };
        let mut parameters = call.details;
        parameters.insert("bucketName".into(), json!(call.bucket));
        let host: String = header("host").unwrap_or_default().chars().take(MAX_HOST).collect();
        parameters.insert("Host".into(), json!(host));
        if let Some(subresource) = call.subresource {
            parameters.insert(subresource.into(), json!(""));
        }
        let record = Record::new(&audited, outcome, request_id.map(|id| id.0.as_str()))
            .with_request(Value::Object(parameters))
            .with_resources(vec![Resource::bucket(&self.account_id, call.bucket)]);
        // Anyone may be refused: an unsigned caller's refused attempts are
        // recorded without a sync each, so they cannot make the region sync
        // at will. What a public policy lets one change is synced as any change.
        let refused = outcome.is_err();
        let durability =
            if principal.is_anonymous() && refused { Durability::Batched } else { Durability::BeforeResponse };
        self.audit.append(&record, durability).await
    }
}

/// A bucket's default encryption as its record shows it: algorithms and
/// key ids, as CloudTrail does.
pub(crate) fn encryption_rules(config: &s3s::dto::ServerSideEncryptionConfiguration) -> Value {
    let rules: Vec<Value> = config
        .rules
        .iter()
        .map(|rule| {
            let default = rule.apply_server_side_encryption_by_default.as_ref();
            json!({
                "ApplyServerSideEncryptionByDefault": default.map(|d| json!({
                    "SSEAlgorithm": d.sse_algorithm.as_str(),
                    "KMSMasterKeyID": d.kms_master_key_id,
                })),
                "BucketKeyEnabled": rule.bucket_key_enabled,
            })
        })
        .collect();
    json!({ "Rule": rules })
}

/// Block Public Access settings as AWS names them.
pub(crate) fn public_access_block(config: crate::PublicAccessBlock) -> Value {
    json!({
        "BlockPublicAcls": config.block_public_acls,
        "IgnorePublicAcls": config.ignore_public_acls,
        "BlockPublicPolicy": config.block_public_policy,
        "RestrictPublicBuckets": config.restrict_public_buckets,
    })
}
