//! One audit record, shaped as AWS CloudTrail shapes an event (one JSON
//! object per line, as CloudTrail Lake and most SIEM agents take them, not
//! CloudTrail's `{"Records": […]}` delivery files).
//!
//! What goes in is chosen, never filtered: callers name the request
//! parameters and response elements a record keeps (see [`keep`]), so a
//! field added to a request later stays out until someone decides it is
//! safe. Plaintext, data keys, ciphertext blobs, secret keys, session
//! tokens and SSE-C keys are never among them.

use serde::Serialize;
use serde_json::{Map, Value};
use tern_iam::policy::Principal;

/// The CloudTrail record version these records follow.
pub const EVENT_VERSION: &str = "1.09";

/// The service a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kms,
    Iam,
    Sts,
    S3,
}

impl Service {
    /// CloudTrail's `eventSource`.
    #[must_use]
    pub fn event_source(self) -> &'static str {
        match self {
            Self::Kms => "kms.amazonaws.com",
            Self::Iam => "iam.amazonaws.com",
            Self::Sts => "sts.amazonaws.com",
            Self::S3 => "s3.amazonaws.com",
        }
    }
}

/// How soon a record must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Appended and fsynced before the call is answered (management calls).
    BeforeResponse,
    /// Written with the next batch, at most [`crate::BATCH_INTERVAL`] later
    /// (KMS data-plane calls, whose rate would otherwise be one fsync each).
    Batched,
}

/// Who made the call, as CloudTrail's `userIdentity` says it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub principal_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arn: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    pub session_issuer: SessionIssuer,
    pub attributes: SessionAttributes,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub user_name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    pub mfa_authenticated: &'static str,
}

impl UserIdentity {
    /// The identity of `principal`; `invoked_by` names the AWS service
    /// (`s3.amazonaws.com`) that made the call on the principal's behalf.
    #[must_use]
    pub fn of(principal: &Principal, invoked_by: Option<&str>) -> Self {
        let base = Self {
            kind: "IAMUser",
            principal_id: principal.user_id.clone().unwrap_or_default(),
            arn: principal.caller_arn().to_owned(),
            account_id: principal.account.clone(),
            access_key_id: principal.access_key_id.clone(),
            user_name: None,
            session_context: None,
            invoked_by: invoked_by.map(str::to_owned),
        };
        if principal.is_anonymous() {
            return Self {
                kind: "AWSAccount",
                principal_id: String::new(),
                arn: String::new(),
                account_id: "ANONYMOUS_PRINCIPAL".to_owned(),
                ..base
            };
        }
        if let Some(service) = &principal.service {
            return Self { kind: "AWSService", arn: String::new(), invoked_by: Some(service.clone()), ..base };
        }
        if principal.is_root() {
            return Self { kind: "Root", principal_id: principal.account.clone(), ..base };
        }
        if principal.session_arn.is_some() {
            let role_id = base.principal_id.split(':').next().unwrap_or_default().to_owned();
            let issuer = SessionIssuer {
                kind: "Role",
                principal_id: role_id,
                arn: principal.arn.clone(),
                account_id: principal.account.clone(),
                user_name: principal.arn.rsplit('/').next().unwrap_or_default().to_owned(),
            };
            let attributes = SessionAttributes { mfa_authenticated: "false" };
            let session_context = Some(SessionContext { session_issuer: issuer, attributes });
            return Self { kind: "AssumedRole", session_context, ..base };
        }
        let user_name = principal.arn.rsplit_once(":user/").map(|(_, path)| path.rsplit('/').next().unwrap_or(path));
        Self { user_name: user_name.map(str::to_owned), ..base }
    }
}

/// A resource a call touched (for KMS, the key).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "ARN")]
    pub arn: String,
}

impl Resource {
    /// A KMS key by its ARN.
    #[must_use]
    pub fn kms_key(account_id: &str, arn: &str) -> Self {
        Self { account_id: account_id.to_owned(), kind: "AWS::KMS::Key", arn: arn.to_owned() }
    }

    /// An IAM role by its ARN.
    #[must_use]
    pub fn role(account_id: &str, arn: &str) -> Self {
        Self { account_id: account_id.to_owned(), kind: "AWS::IAM::Role", arn: arn.to_owned() }
    }

    /// An S3 bucket by name.
    #[must_use]
    pub fn bucket(account_id: &str, name: &str) -> Self {
        Self { account_id: account_id.to_owned(), kind: "AWS::S3::Bucket", arn: format!("arn:aws:s3:::{name}") }
    }
}

/// Where a call came from: the client's address and user agent, or, for a
/// call a service made on its caller's behalf, that service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ip_address: String,
    pub user_agent: String,
    pub invoked_by: Option<String>,
}

impl Source {
    /// A client that called directly.
    #[must_use]
    pub fn client(ip: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Self {
        Self {
            ip_address: ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: user_agent.unwrap_or_default().chars().take(MAX_USER_AGENT).collect(),
            invoked_by: None,
        }
    }

    /// An AWS service (`s3.amazonaws.com`) calling for its caller, as
    /// CloudTrail shows it: the service in place of address and agent.
    #[must_use]
    pub fn service(service: &str) -> Self {
        Self { ip_address: service.to_owned(), user_agent: service.to_owned(), invoked_by: Some(service.to_owned()) }
    }
}

/// The longest user agent kept: the header is the caller's to fill.
const MAX_USER_AGENT: usize = 1024;

/// One call, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: &'static str,
    pub user_identity: UserIdentity,
    pub event_time: String,
    pub event_source: &'static str,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub request_parameters: Value,
    pub response_elements: Value,
    #[serde(rename = "requestID")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: String,
    pub event_category: &'static str,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub additional_event_data: Value,
}

/// What a call was, before it is stamped with a time and an id.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub service: Service,
    pub name: &'a str,
    pub region: &'a str,
    /// The account whose resources the call is about (`recipientAccountId`).
    pub account: &'a str,
    pub principal: &'a Principal,
    pub source: Source,
    pub read_only: bool,
}

/// How a call ended: AWS's error code and message, if it failed.
pub type Outcome<'a> = Result<(), (&'a str, &'a str)>;

impl Record {
    /// The record of `call`, answered with `outcome`. `request_id` is the
    /// one the response carries, when there is one.
    #[must_use]
    pub fn new(call: &Call<'_>, outcome: Outcome<'_>, request_id: Option<&str>) -> Self {
        let (error_code, error_message) = match outcome {
            Ok(()) => (None, None),
            Err((code, message)) => (Some(truncated(code, MAX_NAME)), Some(truncated(message, MAX_MESSAGE))),
        };
        Self {
            event_version: EVENT_VERSION,
            user_identity: UserIdentity::of(call.principal, call.source.invoked_by.as_deref()),
            event_time: crate::now(),
            event_source: call.service.event_source(),
            event_name: event_name(call.name),
            aws_region: call.region.to_owned(),
            source_ip_address: call.source.ip_address.clone(),
            user_agent: call.source.user_agent.clone(),
            error_code,
            error_message,
            request_parameters: Value::Null,
            response_elements: Value::Null,
            request_id: request_id.map_or_else(random_id, str::to_owned),
            event_id: random_id(),
            read_only: call.read_only,
            resources: Vec::new(),
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: call.account.to_owned(),
            event_category: "Management",
            additional_event_data: Value::Null,
        }
    }

    #[must_use]
    pub fn with_request(mut self, parameters: Value) -> Self {
        self.request_parameters = bounded(parameters);
        self
    }

    #[must_use]
    pub fn with_response(mut self, elements: Value) -> Self {
        self.response_elements = bounded(elements);
        self
    }

    /// What an AWS service did by itself, with time (CloudTrail's
    /// `AwsServiceEvent`), rather than a call anyone made.
    #[must_use]
    pub fn as_service_event(mut self) -> Self {
        self.event_type = "AwsServiceEvent";
        self
    }

    /// CloudTrail's `additionalEventData`: what the call's record needs
    /// beyond AWS's own members (such as the region that forwarded it).
    #[must_use]
    pub fn with_additional(mut self, data: Value) -> Self {
        self.additional_event_data = data;
        self
    }

    #[must_use]
    pub fn with_resources(mut self, resources: Vec<Resource>) -> Self {
        self.resources = resources;
        self
    }
}

/// The longest event name or error code kept (AWS's are under 64).
const MAX_NAME: usize = 64;
/// The longest error message kept: messages quote what callers sent.
const MAX_MESSAGE: usize = 1024;
/// The longest text kept of any one value a caller chose (a key policy,
/// 32 KiB on AWS, fits whole).
const MAX_TEXT: usize = 32 * 1024;
/// The most a record keeps of a request's parameters or a response's
/// elements: a caller cannot make one call cost the trail more.
const MAX_PART: usize = 64 * 1024;

/// `name` if it is an operation's name (ASCII letters and digits, as AWS
/// names them), else `InvalidAction`: an event name is never a caller's
/// free text.
fn event_name(name: &str) -> String {
    let valid = (1..=MAX_NAME).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid { name.to_owned() } else { "InvalidAction".to_owned() }
}

/// `text`, cut to at most `max` bytes at a character boundary.
fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let end = (0..=max).rev().find(|at| text.is_char_boundary(*at)).unwrap_or(0);
    format!("{}…", &text[..end])
}

/// `value` with every long text cut to [`MAX_TEXT`], and replaced by a
/// note of its size if it is still longer than [`MAX_PART`].
fn bounded(value: Value) -> Value {
    fn cut(value: Value) -> Value {
        match value {
            Value::String(text) if text.len() > MAX_TEXT => Value::String(truncated(&text, MAX_TEXT)),
            Value::Array(items) => Value::Array(items.into_iter().map(cut).collect()),
            Value::Object(members) => Value::Object(members.into_iter().map(|(k, v)| (k, cut(v))).collect()),
            other => other,
        }
    }
    let value = cut(value);
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_PART { serde_json::json!({ "ternTruncated": { "bytes": size } }) } else { value }
}

/// A random (v4) UUID from the thread's CSPRNG: `Uuid::new_v4` would make a
/// `getrandom` system call for each, and every KMS call makes two.
fn random_id() -> String {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string()
}

/// The members of `object` named in `allowed`, renamed to CloudTrail's
/// lower camel case (`KeyId` becomes `keyId`); `null` when none is there.
#[must_use]
pub fn keep(object: &Value, allowed: &[&str]) -> Value {
    let Some(members) = object.as_object() else { return Value::Null };
    keep_pairs(members.iter().map(|(name, value)| (name.as_str(), value.clone())), allowed)
}

/// As [`keep`], for members given as name and value.
pub fn keep_pairs<'a>(members: impl IntoIterator<Item = (&'a str, Value)>, allowed: &[&str]) -> Value {
    let kept: Map<String, Value> = members
        .into_iter()
        .filter(|(name, _)| allowed.contains(name))
        .map(|(name, value)| (lower_camel(name), value))
        .collect();
    if kept.is_empty() { Value::Null } else { Value::Object(kept) }
}

/// What a caller is told of a call that was made but could not be recorded.
pub const UNRECORDED: &str = "The call was made but could not be recorded in the audit trail; see the server's log.";

/// `KeyId` → `keyId`, as CloudTrail names request members.
#[must_use]
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_shaped_as_cloudtrail_shapes_them() {
        let user = Principal {
            user_id: Some("AIDAEXAMPLE".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            ..Principal::user("123456789012", "alice")
        };
        let identity = serde_json::to_value(UserIdentity::of(&user, None)).unwrap();
        assert_eq!(
            identity,
            serde_json::json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012",
                "accessKeyId": "AKIAEXAMPLE", "userName": "alice"})
        );
        let session = Principal {
            user_id: Some("AROAROLE:s1".into()),
            ..Principal::assumed_role("123456789012", "arn:aws:iam::123456789012:role/r", "s1", None)
        };
        let identity = serde_json::to_value(UserIdentity::of(&session, Some("s3.amazonaws.com"))).unwrap();
        assert_eq!(identity["type"], "AssumedRole");
        assert_eq!(identity["arn"], "arn:aws:sts::123456789012:assumed-role/r/s1");
        assert_eq!(identity["sessionContext"]["sessionIssuer"]["principalId"], "AROAROLE");
        assert_eq!(identity["sessionContext"]["sessionIssuer"]["userName"], "r");
        assert_eq!(identity["invokedBy"], "s3.amazonaws.com");
        let root = serde_json::to_value(UserIdentity::of(&Principal::root("123456789012"), None)).unwrap();
        assert_eq!(root["type"], "Root");
        assert_eq!(root["principalId"], "123456789012");
        let anonymous = serde_json::to_value(UserIdentity::of(&Principal::anonymous(), None)).unwrap();
        assert_eq!(anonymous["accountId"], "ANONYMOUS_PRINCIPAL");
    }

    #[test]
    fn what_a_caller_chose_is_bounded() {
        let alice = Principal::user("123456789012", "alice");
        let source = Source::client(None, None);
        let call = Call {
            service: Service::Kms,
            name: "Decrypt  arn:aws:iam::1:root  ok",
            region: "us-east-1",
            account: "123456789012",
            principal: &alice,
            source,
            read_only: true,
        };
        let long = "x".repeat(100_000);
        let record = Record::new(&call, Err(("Code", &long)), None)
            .with_request(serde_json::json!({"policy": long, "many": vec!["y".repeat(1000); 100]}));
        assert_eq!(record.event_name, "InvalidAction");
        assert!(record.error_message.as_ref().unwrap().len() <= MAX_MESSAGE + 3);
        assert!(record.request_parameters["ternTruncated"]["bytes"].as_u64().unwrap() > 64 * 1024);
        let small = Record::new(&Call { name: "Decrypt", ..call }, Ok(()), None)
            .with_request(serde_json::json!({"policy": "y".repeat(40_000)}));
        assert_eq!(small.request_parameters["policy"].as_str().unwrap().len(), MAX_TEXT + "…".len());
        assert_eq!(truncated("héllo", 2), "h…");
    }

    #[test]
    fn only_named_members_are_kept() {
        let request = serde_json::json!({"KeyId": "k", "Plaintext": "c2VjcmV0", "KeySpec": "AES_256"});
        assert_eq!(keep(&request, &["KeyId", "KeySpec"]), serde_json::json!({"keyId": "k", "keySpec": "AES_256"}));
        assert_eq!(keep(&request, &["Other"]), Value::Null);
        assert_eq!(keep(&Value::Null, &["KeyId"]), Value::Null);
    }
}
