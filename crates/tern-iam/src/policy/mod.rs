//! The IAM policy language: documents parsed into statements once, checked
//! as AWS checks them, and evaluated against a request.
//!
//! Supported: Effect; Action/NotAction and Resource/NotResource with `*`
//! and `?` wildcards; Principal/NotPrincipal (`*`, account ids, account
//! roots, user and role ARNs, services); Condition with the String*, Arn*,
//! Bool and Null operators, `IfExists`, and the `ForAnyValue:` /
//! `ForAllValues:` set qualifiers. Written by hand: no maintained Rust crate
//! evaluates AWS policies.

mod condition;
mod denial;
mod document;
mod matching;

pub use condition::RequestContext;
pub use denial::{Denial, PolicyType, Refusal};
pub use document::{Policy, PolicyError};

/// The ARN an anonymous caller carries (no principal element names it).
const ANONYMOUS: &str = "anonymous";

/// The S3 service principal.
pub const S3_SERVICE: &str = "s3.amazonaws.com";

/// Who a request is from, as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The ARN policies match: `arn:aws:iam::<acct>:root`, a user ARN, or,
    /// for an assumed-role session, the role's ARN.
    pub arn: String,
    pub account: String,
    /// The session ARN of an assumed role
    /// (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`).
    pub session_arn: Option<String>,
    /// A service principal such as `s3.amazonaws.com`.
    pub service: Option<String>,
    /// For a session an AWS service assumed for its own work (S3 replicating
    /// as the rule's role), that service. Never set for a session a user
    /// asked for with `AssumeRole`.
    pub assumed_by_service: Option<String>,
    /// Where the request came from, for `aws:SourceIp` and
    /// `aws:SecureTransport`; set by whoever accepted the connection.
    pub origin: Origin,
    /// `aws:userid`: the user's unique id, `<role id>:<session name>` for a
    /// role session, the account id for the root.
    pub user_id: Option<String>,
    /// The access key the request was signed with, for the audit trail
    /// (never for authorization: policies speak of principals, not keys).
    pub access_key_id: Option<String>,
}

/// How a request reached the deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// Over TLS.
    pub secure_transport: bool,
    /// The client's address; absent when a service calls on the caller's
    /// behalf (as AWS leaves `aws:SourceIp` out then).
    pub source_ip: Option<std::net::IpAddr>,
    /// For S3 requests: `s3:signatureversion` and `s3:authType`.
    pub signature: Option<(&'static str, &'static str)>,
}

impl Principal {
    #[must_use]
    pub fn root(account: &str) -> Self {
        Self { user_id: Some(account.to_owned()), ..Self::of_arn(account, format!("arn:aws:iam::{account}:root")) }
    }

    /// The IAM user `name` of `account`.
    #[must_use]
    pub fn user(account: &str, name: &str) -> Self {
        Self::of_arn(account, format!("arn:aws:iam::{account}:user/{name}"))
    }

    /// A user, role or root of `account` by ARN, without a session.
    #[must_use]
    pub fn of_arn(account: &str, arn: String) -> Self {
        Self {
            arn,
            account: account.to_owned(),
            session_arn: None,
            service: None,
            assumed_by_service: None,
            origin: Origin::default(),
            user_id: None,
            access_key_id: None,
        }
    }

    /// A session of `role_arn` named `session_name`; `by_service` is the
    /// service that assumed it for its own work, if one did.
    #[must_use]
    pub fn assumed_role(account: &str, role_arn: &str, session_name: &str, by_service: Option<&str>) -> Self {
        let role = role_arn.rsplit('/').next().unwrap_or_default();
        Self {
            session_arn: Some(format!("arn:aws:sts::{account}:assumed-role/{role}/{session_name}")),
            assumed_by_service: by_service.map(str::to_owned),
            ..Self::of_arn(account, role_arn.to_owned())
        }
    }

    /// An unsigned request's caller: it matches only `Principal: *`, and no
    /// identity policy speaks for it.
    #[must_use]
    pub fn anonymous() -> Self {
        Self::of_arn("", ANONYMOUS.to_owned())
    }

    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.arn == ANONYMOUS && self.account.is_empty()
    }

    /// The same principal, calling from `origin`.
    #[must_use]
    pub fn from(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Whether S3 assumed this session for replication.
    #[must_use]
    pub fn is_s3_replication(&self) -> bool {
        self.session_arn.is_some() && self.assumed_by_service.as_deref() == Some(S3_SERVICE)
    }

    #[must_use]
    pub fn is_root(&self) -> bool {
        self.service.is_none() && self.arn == format!("arn:aws:iam::{}:root", self.account)
    }

    /// The ARN AWS names in denials: the session's for an assumed role.
    #[must_use]
    pub fn caller_arn(&self) -> &str {
        self.session_arn.as_deref().unwrap_or(&self.arn)
    }
}

/// One request as policies evaluate it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `service:Action`, e.g. `kms:Decrypt`.
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a RequestContext,
}

/// What the statements of one policy say about a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    /// A matching Deny statement: nothing else can allow the request.
    pub denied: bool,
    /// A matching Allow statement that names the principal (or any principal).
    pub allowed: bool,
    /// A matching Allow statement that names only the principal's account
    /// (`arn:aws:iam::<acct>:root` or `<acct>`): it delegates to IAM.
    pub allowed_for_account: bool,
}

impl Verdict {
    /// Folds the verdicts of several policies.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            denied: self.denied || other.denied,
            allowed: self.allowed || other.allowed,
            allowed_for_account: self.allowed_for_account || other.allowed_for_account,
        }
    }
}
