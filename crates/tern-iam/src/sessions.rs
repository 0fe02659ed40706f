//! STS session credentials that every region can verify without asking
//! anyone: the session token is the session itself (access key, secret,
//! role, expiry), sealed under a key derived from the deployment's root
//! secret, which every region holds. Expiry is checked on every use.

use serde::{Deserialize, Serialize};
use tern_crypto::{Key256, wrap};
use zeroize::Zeroizing;

use crate::policy::Principal;

const PURPOSE: &[u8] = b"tern sts session v1";

#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
    pub role_arn: String,
    pub role_id: String,
    pub session_name: String,
    pub account: String,
    /// Unix seconds.
    pub expires: i64,
    /// The AWS service that assumed the role for its own work (S3 for
    /// replication), when no user did: such sessions may do what only that
    /// service does, such as delivering replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_by_service: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("role_arn", &self.role_arn)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    #[must_use]
    pub fn principal(&self) -> Principal {
        let service = self.assumed_by_service.as_deref();
        Principal {
            user_id: Some(format!("{}:{}", self.role_id, self.session_name)),
            ..Principal::assumed_role(&self.account, &self.role_arn, &self.session_name, service)
        }
    }
}

/// Seals and opens session tokens.
pub struct SessionKeys {
    key: Key256,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl SessionKeys {
    /// Keys derived from the deployment's root secret access key.
    #[must_use]
    pub fn new(root_secret: &str) -> Self {
        let seed = wrap::derive(&Key256::from_bytes(sha256(root_secret.as_bytes())), PURPOSE);
        Self { key: seed }
    }

    pub fn seal(&self, session: &Session) -> Result<String, tern_crypto::CryptoError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(session).expect("a session serializes"));
        let sealed = wrap::seal(&self.key, PURPOSE, &json)?;
        Ok(base64::Engine::encode(&b64(), sealed))
    }

    /// The session in `token` if it is authentic, names `access_key_id`, and
    /// has not expired at `now` (Unix seconds).
    #[must_use]
    pub fn open(&self, token: &str, access_key_id: &str, now: i64) -> Option<Session> {
        let sealed = base64::Engine::decode(&b64(), token).ok()?;
        let json = zeroize::Zeroizing::new(wrap::open(&self.key, PURPOSE, &sealed).ok()?);
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.access_key_id == access_key_id && now < session.expires).then_some(session)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    tern_crypto::sha256(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: i64) -> Session {
        Session {
            access_key_id: "ASIAEXAMPLE".into(),
            secret: Zeroizing::new("s".into()),
            role_arn: "arn:aws:iam::111122223333:role/app".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "job".into(),
            account: "111122223333".into(),
            expires,
            assumed_by_service: None,
        }
    }

    #[test]
    fn tokens_open_only_for_their_key_until_they_expire() {
        let keys = SessionKeys::new("root-secret");
        let token = keys.seal(&session(1000)).unwrap();
        assert!(keys.open(&token, "ASIAEXAMPLE", 999).is_some());
        assert!(keys.open(&token, "ASIAEXAMPLE", 1000).is_none(), "expired");
        assert!(keys.open(&token, "ASIAOTHER", 999).is_none());
        assert!(SessionKeys::new("other-root").open(&token, "ASIAEXAMPLE", 999).is_none());
        assert!(keys.open("garbage", "ASIAEXAMPLE", 999).is_none());
        let principal = session(1).principal();
        assert_eq!(principal.session_arn.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/app/job"));
    }
}
