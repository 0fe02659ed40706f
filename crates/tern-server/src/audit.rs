//! The region's audit trail, fed by its front door: every KMS, IAM and STS
//! call, and the KMS calls S3 makes on its callers' behalf. (S3's own
//! configuration calls are recorded by `tern-s3`.)
//!
//! Records keep only members named here, so nothing secret can slip in
//! with a field added later: never plaintext, data keys, ciphertext blobs,
//! grant tokens, secret access keys or session tokens.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use serde_json::{Value, json};
use tern_audit::{AuditLog, Call, ChainKey, Durability, Record, Resource, Service, Source};
use tern_core::DeploymentConfig;
use tern_iam::policy::Principal;
use tern_kms::{CryptoCall, KmsError};

/// Opens the trail of region `name`, whose data lives in `region_dir`.
pub fn open(
    deployment: &DeploymentConfig,
    name: &str,
    region_dir: &Path,
    root_key: &tern_crypto::Key256,
) -> anyhow::Result<Arc<AuditLog>> {
    if !deployment.audit.enabled {
        return Ok(Arc::new(AuditLog::disabled()));
    }
    let config = deployment.region(name).with_context(|| format!("region {name} is not in the deployment"))?;
    let options = tern_audit::Options {
        dir: tern_audit::dir_of(region_dir, config.shares_stores().then_some(config.listen)),
        region: name.to_owned(),
        max_file_bytes: deployment.audit.max_file_bytes,
    };
    let log = AuditLog::open(&options, ChainKey::derived(root_key))
        .map_err(|e| anyhow::anyhow!("opening the audit trail in {}: {e}", options.dir.display()))?;
    Ok(Arc::new(log))
}

/// KMS operations that use keys rather than manage them: batched.
const KMS_DATA_PLANE: &[&str] =
    &["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateRandom"];

/// What a KMS request may show of itself. Not `Plaintext`, `CiphertextBlob`
/// or `GrantTokens`.
const KMS_REQUEST: &[&str] = &[
    "KeyId",
    "EncryptionContext",
    "EncryptionAlgorithm",
    "KeySpec",
    "NumberOfBytes",
    "SourceKeyId",
    "SourceEncryptionContext",
    "SourceEncryptionAlgorithm",
    "DestinationKeyId",
    "DestinationEncryptionContext",
    "DestinationEncryptionAlgorithm",
    "Description",
    "KeyUsage",
    "CustomerMasterKeySpec",
    "Origin",
    "MultiRegion",
    "Policy",
    "PolicyName",
    "BypassPolicyLockoutSafetyCheck",
    "Tags",
    "TagKeys",
    "AliasName",
    "TargetKeyId",
    "PendingWindowInDays",
    "RotationPeriodInDays",
    "GranteePrincipal",
    "RetiringPrincipal",
    "Operations",
    "Constraints",
    "Name",
    "GrantId",
    "ReplicaRegion",
    "PrimaryRegion",
    "Limit",
    "Marker",
    "DryRun",
];

/// What a KMS response of a management call may show. Not `GrantToken`.
const KMS_RESPONSE: &[&str] = &["KeyMetadata", "ReplicaKeyMetadata", "GrantId"];

/// A region's view of one request for its records.
pub struct Requested<'a> {
    pub region: &'a str,
    /// The deployment's account, whose resources every call is about.
    pub account: &'a str,
    pub principal: &'a Principal,
    pub user_agent: Option<&'a str>,
    /// For an IAM call another region forwarded to the authority: that region.
    pub forwarded_by: Option<&'a str>,
}

impl Requested<'_> {
    fn call<'a>(&'a self, service: Service, name: &'a str, read_only: bool) -> Call<'a> {
        let source = Source::client(self.principal.origin.source_ip, self.user_agent);
        let (region, account, principal) = (self.region, self.account, self.principal);
        Call { service, name, region, account, principal, source, read_only }
    }
}

/// The record of a KMS call answered at the front door, and how soon it
/// must be on disk.
pub fn kms_record(
    requested: &Requested<'_>,
    operation: &str,
    request: &Value,
    result: &Result<Value, KmsError>,
    request_id: &str,
) -> (Record, Durability) {
    let data_plane = KMS_DATA_PLANE.contains(&operation);
    let read_only = data_plane && operation != "ReEncrypt"
        || ["Describe", "List", "Get"].iter().any(|verb| operation.starts_with(verb));
    // A request KMS could not read is refused with words that quote it.
    let outcome = result.as_ref().map(drop).map_err(|e| {
        let message = if e.code == "SerializationException" { "The request could not be read." } else { &e.message };
        (e.code, message)
    });
    let response = match result {
        Ok(response) if !read_only => tern_audit::record::keep(response, KMS_RESPONSE),
        _ => Value::Null,
    };
    let resources = kms_keys(requested, request, result.as_ref().ok());
    let record = Record::new(&requested.call(Service::Kms, operation, read_only), outcome, Some(request_id))
        .with_request(tern_audit::record::keep(request, KMS_REQUEST))
        .with_response(response)
        .with_resources(resources);
    (record, if data_plane { Durability::Batched } else { Durability::BeforeResponse })
}

/// The keys a KMS call used: as the response names them, else as the request did.
fn kms_keys(requested: &Requested<'_>, request: &Value, response: Option<&Value>) -> Vec<Resource> {
    let account = requested.account;
    // Read as KMS reads a key reference: a resource is never the caller's
    // free text, nor a key of another region or account.
    let named = |value: &Value| -> Option<String> {
        match tern_kms::ids::parse_key_ref(value.as_str()?, requested.region, account).ok()? {
            tern_kms::ids::KeyRef::Key(id) => Some(tern_kms::ids::key_arn(requested.region, account, &id)),
            tern_kms::ids::KeyRef::Alias(_) => None,
        }
    };
    let mut arns: Vec<String> = match response {
        Some(response) => [&response["KeyId"], &response["SourceKeyId"], &response["KeyMetadata"]["Arn"]]
            .into_iter()
            .filter_map(named)
            .collect(),
        None => Vec::new(),
    };
    if arns.is_empty() {
        arns.extend(named(&request["KeyId"]).or_else(|| named(&request["TargetKeyId"])));
    }
    arns.dedup();
    arns.into_iter().map(|arn| Resource::kms_key(account, &arn)).collect()
}

/// The record of an IAM or STS call: `params` as the caller sent them,
/// `body` the XML answered.
pub fn query_record(requested: &Requested<'_>, service: &str, params: &[(String, String)], body: &str) -> Record {
    let action = params.iter().find(|(k, _)| k == "Action").map_or("", |(_, v)| v.as_str());
    let read_only = ["Get", "List"].iter().any(|verb| action.starts_with(verb));
    let service = if service == "sts" { Service::Sts } else { Service::Iam };
    let code = tern_iam::xml::leaf_text(body, "Code");
    let message = tern_iam::xml::leaf_text(body, "Message").unwrap_or_default();
    let outcome = code.as_deref().map_or(Ok(()), |code| Err((code, message.as_str())));
    let request_id = tern_iam::xml::leaf_text(body, "RequestId");
    let response = if code.is_none() && !read_only { query_response(action, body) } else { Value::Null };
    let forwarded = requested.forwarded_by.map_or(Value::Null, |region| json!({ "forwardedBy": region }));
    let parameters = params.iter().map(|(name, value)| (name.as_str(), json!(value)));
    Record::new(&requested.call(service, action, read_only), outcome, request_id.as_deref())
        .with_request(tern_audit::record::keep_pairs(parameters, QUERY_REQUEST))
        .with_response(response)
        .with_additional(forwarded)
}

/// What an IAM or STS request may show of itself: names, ARNs and policy
/// documents, never a secret.
const QUERY_REQUEST: &[&str] = &[
    "UserName",
    "RoleName",
    "PolicyName",
    "PolicyDocument",
    "AssumeRolePolicyDocument",
    "AccessKeyId",
    "Status",
    "Path",
    "PathPrefix",
    "Description",
    "MaxSessionDuration",
    "RoleArn",
    "RoleSessionName",
    "DurationSeconds",
    "Policy",
    "PolicyArn",
    "Marker",
    "MaxItems",
];

/// What a successful IAM or STS change answered, as CloudTrail shows it:
/// identifiers and dates. An access key's secret and a session's secret and
/// token are never read out.
fn query_response(action: &str, body: &str) -> Value {
    let leaves = |names: &[&str]| -> Value {
        let kept: serde_json::Map<String, Value> = names
            .iter()
            .filter_map(|name| {
                Some((tern_audit::record::lower_camel(name), json!(tern_iam::xml::leaf_text(body, name)?)))
            })
            .collect();
        Value::Object(kept)
    };
    match action {
        "CreateUser" => json!({ "user": leaves(&["UserName", "UserId", "Arn", "Path", "CreateDate"]) }),
        "CreateAccessKey" => json!({ "accessKey": leaves(&["AccessKeyId", "Status", "UserName", "CreateDate"]) }),
        "CreateRole" => json!({ "role": leaves(&["RoleName", "RoleId", "Arn", "Path", "CreateDate"]) }),
        "AssumeRole" => json!({
            "credentials": leaves(&["AccessKeyId", "Expiration"]),
            "assumedRoleUser": leaves(&["AssumedRoleId", "Arn"]),
        }),
        _ => Value::Null,
    }
}

/// An AWS service acting in `account` by itself.
fn service_principal(account: &str, service: &str) -> Principal {
    Principal { service: Some(service.to_owned()), ..Principal::root(account) }
}

/// Records what the front door does not see: the KMS calls S3 makes for
/// its callers (as CloudTrail does: the caller's identity, invoked by
/// `s3.amazonaws.com`), and what KMS does by itself with time.
pub struct KmsAudit {
    region: String,
    account: String,
    log: Arc<AuditLog>,
}

impl KmsAudit {
    pub fn new(region: &str, account: &str, log: &Arc<AuditLog>) -> Self {
        Self { region: region.to_owned(), account: account.to_owned(), log: Arc::clone(log) }
    }
}

impl tern_kms::KmsObserver for KmsAudit {
    /// Recorded as CloudTrail records KMS's own deletions and rotations:
    /// invoked by `kms.amazonaws.com`, the key as the resource.
    fn service_event(&self, name: &str, key_arn: &str) {
        let service = "kms.amazonaws.com";
        let principal = service_principal(&self.account, service);
        let (region, account) = (&self.region, &self.account);
        let source = Source::service(service);
        let call =
            Call { service: Service::Kms, name, region, account, principal: &principal, source, read_only: false };
        let record = Record::new(&call, Ok(()), None)
            .as_service_event()
            .with_resources(vec![Resource::kms_key(account, key_arn)]);
        self.log.append_batched(&record);
    }

    fn cryptographic_call(&self, call: &CryptoCall<'_>) {
        if call.caller.via_service.is_none() {
            return;
        }
        let name = call.action.strip_suffix("From").or_else(|| call.action.strip_suffix("To")).unwrap_or(call.action);
        let source = Source::service(tern_iam::policy::S3_SERVICE);
        let principal = &call.caller.principal;
        let (region, account) = (&self.region, &self.account);
        let audited = Call { service: Service::Kms, name, region, account, principal, source, read_only: true };
        let outcome = call.error.map_or(Ok(()), |e| Err((e.code, e.message.as_str())));
        let mut request = json!({ "encryptionContext": call.context });
        match name {
            "Decrypt" => request["encryptionAlgorithm"] = json!("SYMMETRIC_DEFAULT"),
            _ => request["keySpec"] = json!("AES_256"),
        }
        if let Some(arn) = call.key_arn {
            request["keyId"] = json!(arn);
        }
        let resources = call.key_arn.map(|arn| Resource::kms_key(&principal.account, arn)).into_iter().collect();
        let record = Record::new(&audited, outcome, None).with_request(request).with_resources(resources);
        self.log.append_batched(&record);
    }
}

/// The replicator's observers: the region's metrics, and the trail, which
/// records S3 assuming a rule's role as CloudTrail does (an `AWSService`
/// identity calling STS `AssumeRole`).
pub struct ReplicationObservers {
    metrics: Arc<crate::metrics::RegionMetrics>,
    trail: KmsAudit,
}

impl ReplicationObservers {
    pub fn new(metrics: &Arc<crate::metrics::RegionMetrics>, region: &str, account: &str, log: &Arc<AuditLog>) -> Self {
        Self { metrics: Arc::clone(metrics), trail: KmsAudit::new(region, account, log) }
    }
}

impl tern_replication::ReplicationObserver for ReplicationObservers {
    fn completed(&self, task: &tern_store::TaskRecord, latency: std::time::Duration) {
        self.metrics.completed(task, latency);
    }

    fn failed(&self, task: &tern_store::TaskRecord, reason: tern_replication_model::FailureReason) {
        self.metrics.failed(task, reason);
    }

    fn backlog(&self, backlog: &[tern_store::Backlog]) {
        self.metrics.backlog(backlog);
    }

    fn role_assumed(&self, role: &str, session: Result<(&str, i64), &str>) {
        let KmsAudit { region, account, log } = &self.trail;
        let service = tern_iam::policy::S3_SERVICE;
        let principal = service_principal(account, service);
        let session_name = tern_replication_model::protocol::SESSION_NAME;
        let call = Call {
            service: Service::Sts,
            name: "AssumeRole",
            region,
            account,
            principal: &principal,
            source: Source::service(service),
            read_only: false,
        };
        let outcome = session.map(drop).map_err(|why| ("AccessDenied", why));
        let response = session.map_or(Value::Null, |(access_key_id, expires)| {
            let session_arn = Principal::assumed_role(account, role, session_name, Some(service)).session_arn;
            json!({
                "credentials": {"accessKeyId": access_key_id, "expiration": tern_iam::xml::iso8601(expires)},
                "assumedRoleUser": {"arn": session_arn},
            })
        });
        let record = Record::new(&call, outcome, None)
            .with_request(json!({"roleArn": role, "roleSessionName": session_name}))
            .with_response(response)
            .with_resources(vec![Resource::role(account, role)]);
        log.append_batched(&record);
    }
}

/// The region's KMS observers: its metrics and its audit trail.
pub struct KmsObservers(pub Vec<Arc<dyn tern_kms::KmsObserver>>);

impl tern_kms::KmsObserver for KmsObservers {
    fn cryptographic_call(&self, call: &CryptoCall<'_>) {
        for observer in &self.0 {
            observer.cryptographic_call(call);
        }
    }

    fn service_event(&self, name: &str, key_arn: &str) {
        for observer in &self.0 {
            observer.service_event(name, key_arn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(principal: &Principal) -> Requested<'_> {
        Requested {
            region: "us-east-1",
            account: "123456789012",
            principal,
            user_agent: Some("test"),
            forwarded_by: None,
        }
    }

    #[test]
    fn kms_records_keep_no_plaintext_and_name_the_key() {
        let alice = Principal::user("123456789012", "alice");
        let body = json!({"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Plaintext": "c2VjcmV0", "EncryptionContext": {"a": "b"}});
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let response = Ok(json!({"KeyId": arn, "CiphertextBlob": "YmxvYg=="}));
        let (record, durability) = kms_record(&requested(&alice), "Encrypt", &body, &response, "r1");
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("c2VjcmV0") && !text.contains("YmxvYg=="), "{text}");
        assert_eq!(durability, Durability::Batched);
        assert_eq!(record.resources[0].arn, arn);
        assert_eq!(
            record.request_parameters,
            json!({"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "encryptionContext": {"a": "b"}})
        );
        let foreign = json!({"KeyId": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"});
        let refused = Err(KmsError::not_found("no"));
        let (record, _) = kms_record(&requested(&alice), "Decrypt", &foreign, &refused, "r3");
        assert!(record.resources.is_empty(), "no key of another region is named");
        let grant = Ok(json!({"GrantId": "g", "GrantToken": "secret-token"}));
        let (record, durability) = kms_record(&requested(&alice), "CreateGrant", &json!({}), &grant, "r2");
        assert_eq!(record.response_elements, json!({"grantId": "g"}));
        assert_eq!(durability, Durability::BeforeResponse);
    }

    #[tokio::test]
    async fn kms_acting_by_itself_is_a_service_event() {
        use tern_kms::KmsObserver as _;
        let dir = tempfile::tempdir().unwrap();
        let options =
            tern_audit::Options { dir: dir.path().to_owned(), region: "us-east-1".into(), max_file_bytes: 1 << 20 };
        let log =
            Arc::new(AuditLog::open(&options, ChainKey::derived(&tern_crypto::Key256::from_bytes([1; 32]))).unwrap());
        let arn = "arn:aws:kms:us-east-1:123456789012:key/k1";
        KmsAudit::new("us-east-1", "123456789012", &log).service_event("DeleteKey", arn);
        log.close().await;
        let records = tern_audit::query::records(dir.path(), &tern_audit::query::Filter::default()).unwrap();
        let record = &records[0].record;
        assert_eq!(
            (record["eventType"].as_str(), record["eventName"].as_str()),
            (Some("AwsServiceEvent"), Some("DeleteKey"))
        );
        assert_eq!(record["userIdentity"]["invokedBy"], "kms.amazonaws.com");
        assert_eq!(record["resources"][0]["ARN"], arn);
    }

    #[test]
    fn iam_records_keep_identifiers_never_secrets() {
        let alice = Principal::user("123456789012", "alice");
        let mut body = String::new();
        tern_iam::xml::element(&mut body, "AccessKey", |out| {
            tern_iam::xml::leaf(out, "AccessKeyId", "AKIA1");
            tern_iam::xml::leaf(out, "SecretAccessKey", "very-secret");
            tern_iam::xml::leaf(out, "Status", "Active");
        });
        let body = tern_iam::xml::response("CreateAccessKey", tern_iam::api::NAMESPACE, Some(&body));
        let params = [("Action".to_owned(), "CreateAccessKey".to_owned()), ("UserName".to_owned(), "bob".to_owned())];
        let record = query_record(&requested(&alice), "iam", &params, &body);
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("very-secret"), "{text}");
        assert_eq!(record.response_elements, json!({"accessKey": {"accessKeyId": "AKIA1", "status": "Active"}}));
        assert_eq!(record.request_parameters, json!({"userName": "bob"}));
        let denied = tern_iam::xml::error(tern_iam::api::NAMESPACE, "AccessDenied", "no", true);
        let record = query_record(&requested(&alice), "iam", &params, &denied);
        assert_eq!((record.error_code.as_deref(), record.response_elements), (Some("AccessDenied"), Value::Null));
    }
}
