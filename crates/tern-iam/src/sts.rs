//! STS: `GetCallerIdentity` and `AssumeRole`. Sessions are self-contained
//! sealed tokens (see [`crate::sessions`]), so every region verifies them.

use crate::api::{Params, now, param, random_id, random_secret, required};
use crate::error::{IamError, IamResult};
use crate::policy::{Policy, Principal, Request, RequestContext};
use crate::service::Iam;
use crate::sessions::Session;
use crate::xml::{element, iso8601, leaf, response};

pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

impl Iam {
    /// Answers one STS request from `caller` with (HTTP status, XML body).
    #[must_use]
    pub fn handle_sts(&self, caller: &Principal, params: &Params) -> (u16, String) {
        let result = match param(params, "Action") {
            Some("GetCallerIdentity") => Ok(self.caller_identity(caller)),
            Some("AssumeRole") => self.assume_role(caller, params),
            Some(other) => Err(IamError::invalid_action(other)),
            None => Err(IamError::missing("action")),
        };
        match result {
            Ok((action, body)) => (200, response(action, NAMESPACE, Some(&body))),
            Err(e) => (e.status, crate::xml::error(NAMESPACE, e.code, &e.message, e.status < 500)),
        }
    }

    fn caller_identity(&self, caller: &Principal) -> (&'static str, String) {
        let user_id = match (&caller.session_arn, caller.arn.split_once(":user/")) {
            (Some(session), _) => {
                let role = caller.arn.rsplit('/').next().unwrap_or_default();
                let session_name = session.rsplit('/').next().unwrap_or_default();
                let role_id = self.directory().roles.get(role).map(|r| r.id.clone()).unwrap_or_default();
                format!("{role_id}:{session_name}")
            }
            (None, Some((_, name))) => self.directory().users.get(name).map(|u| u.id.clone()).unwrap_or_default(),
            (None, None) => self.account.clone(),
        };
        let mut out = String::new();
        leaf(&mut out, "Arn", caller.caller_arn());
        leaf(&mut out, "UserId", &user_id);
        leaf(&mut out, "Account", &caller.account);
        ("GetCallerIdentity", out)
    }

    fn assume_role(&self, caller: &Principal, params: &Params) -> IamResult<(&'static str, String)> {
        let role_arn = required(params, "RoleArn")?;
        let session_name = required(params, "RoleSessionName")?;
        let valid_session = (2..=64).contains(&session_name.len())
            && session_name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !valid_session {
            return Err(IamError::validation("RoleSessionName must be 2-64 characters of [\\w+=,.@-]."));
        }
        if caller.is_root() {
            return Err(IamError::access_denied("Roles may not be assumed by root accounts."));
        }
        let directory = self.directory();
        let role = role_arn
            .strip_prefix(&format!("arn:aws:iam::{}:role/", self.account))
            .and_then(|name| directory.roles.get(name))
            .ok_or_else(|| Self::not_authorized_to_assume(caller, role_arn))?;
        let duration = match param(params, "DurationSeconds") {
            Some(v) => {
                v.parse::<i64>().ok().filter(|d| (900..=role.max_session_seconds).contains(d)).ok_or_else(|| {
                    IamError::validation(format!(
                        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({}).",
                        role.max_session_seconds
                    ))
                })?
            }
            None => 3600,
        };
        let context = RequestContext::of(caller);
        let request = Request { principal: caller, action: "sts:AssumeRole", resource: role_arn, context: &context };
        let trust = Policy::trust(&role.trust_policy).map(|p| p.evaluate(&request)).unwrap_or_default();
        let identity = self.identity_verdict(&request);
        let allowed =
            !trust.denied && !identity.denied && (trust.allowed || (trust.allowed_for_account && identity.allowed));
        if !allowed {
            return Err(Self::not_authorized_to_assume(caller, role_arn));
        }
        let (session, token) = self
            .new_session(role, role_arn, session_name, duration, None)
            .map_err(|e| IamError::service_failure(e.to_string()))?;
        let mut out = String::new();
        element(&mut out, "Credentials", |out| {
            leaf(out, "AccessKeyId", &session.access_key_id);
            leaf(out, "SecretAccessKey", &session.secret);
            leaf(out, "SessionToken", &token);
            leaf(out, "Expiration", &iso8601(session.expires));
        });
        element(&mut out, "AssumedRoleUser", |out| {
            leaf(out, "AssumedRoleId", &format!("{}:{session_name}", role.id));
            leaf(out, "Arn", session.principal().caller_arn());
        });
        Ok(("AssumeRole", out))
    }

    /// Credentials of `role_arn` for the AWS service `service` (such as
    /// `s3.amazonaws.com` assuming a replication role): the role must exist
    /// and its trust policy must let the service assume it. Returns the
    /// session and its token.
    pub fn service_session(
        &self,
        role_arn: &str,
        service: &str,
        session_name: &str,
    ) -> Result<(Session, String), String> {
        let role = self.trusted_role(role_arn, service)?;
        self.new_session(&role, role_arn, session_name, 3600, Some(service)).map_err(|e| e.to_string())
    }

    /// Whether `role_arn` exists and its trust policy lets `service` assume it.
    pub fn trusts_service(&self, role_arn: &str, service: &str) -> Result<(), String> {
        self.trusted_role(role_arn, service).map(drop)
    }

    fn trusted_role(&self, role_arn: &str, service: &str) -> Result<crate::model::Role, String> {
        let directory = self.directory();
        let role = role_arn
            .strip_prefix(&format!("arn:aws:iam::{}:role/", self.account))
            .and_then(|name| directory.roles.get(name))
            .ok_or_else(|| format!("The role {role_arn} does not exist."))?;
        let principal = Principal { service: Some(service.to_owned()), ..Principal::root(&self.account) };
        let context = RequestContext::of(&principal);
        let request =
            Request { principal: &principal, action: "sts:AssumeRole", resource: role_arn, context: &context };
        let trust = Policy::trust(&role.trust_policy).map(|p| p.evaluate(&request)).unwrap_or_default();
        if trust.denied || !trust.allowed {
            return Err(format!("The trust policy of {role_arn} does not let {service} assume it."));
        }
        Ok(role.clone())
    }

    /// Fresh credentials of `role` for `seconds`, and their sealed token.
    /// `service` is the AWS service assuming the role for its own work, if any.
    fn new_session(
        &self,
        role: &crate::model::Role,
        role_arn: &str,
        session_name: &str,
        seconds: i64,
        service: Option<&str>,
    ) -> Result<(Session, String), tern_crypto::CryptoError> {
        let session = Session {
            access_key_id: random_id("ASIA", 16),
            secret: zeroize::Zeroizing::new(random_secret()),
            role_arn: role_arn.to_owned(),
            role_id: role.id.clone(),
            session_name: session_name.to_owned(),
            account: self.account.clone(),
            expires: now() + seconds,
            assumed_by_service: service.map(str::to_owned),
        };
        let token = self.sessions.seal(&session)?;
        Ok((session, token))
    }

    fn not_authorized_to_assume(caller: &Principal, role_arn: &str) -> IamError {
        IamError::access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.caller_arn()
        ))
    }
}
