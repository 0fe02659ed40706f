//! How a follower region reaches the IAM authority region: signed IAM
//! query-API calls as the deployment's root, naming the original caller.

use async_trait::async_trait;
use bytes::Bytes;
use tern_crypto::transport::PUBLIC_KEY_LEN;
use tern_iam::IamAuthority;
use tern_iam::policy::Principal;

use crate::peer::{PeerClient, PeerRequest};

/// Internal parameters: only honoured on requests signed by the root.
pub const CALLER_PARAM: &str = "TernCaller";
pub const SESSION_PARAM: &str = "TernCallerSession";
pub const SNAPSHOT_ACTION: &str = "TernSnapshot";

pub struct HttpIamAuthority {
    pub peer: PeerClient,
}

/// Form-encodes query-protocol parameters.
pub fn encode_form(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl HttpIamAuthority {
    async fn post(&self, params: &[(String, String)]) -> Result<(u16, Bytes), String> {
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let request = PeerRequest {
            service: "iam",
            method: http::Method::POST,
            path_and_query: "/",
            headers: &headers,
            body: Bytes::from(encode_form(params)),
        };
        let (status, body) = self.peer.request(request).await.map_err(|e| format!("{e:#}"))?;
        Ok((status.as_u16(), body))
    }
}

#[async_trait]
impl IamAuthority for HttpIamAuthority {
    async fn forward(&self, caller: &Principal, params: &[(String, String)]) -> Result<(u16, String), String> {
        let mut params = params.to_vec();
        params.push((CALLER_PARAM.to_owned(), caller.arn.clone()));
        if let Some(session) = &caller.session_arn {
            params.push((SESSION_PARAM.to_owned(), session.clone()));
        }
        let (status, body) = self.post(&params).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn snapshot(&self, since: u64, recipient: &[u8; PUBLIC_KEY_LEN]) -> Result<Option<Vec<u8>>, String> {
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, recipient);
        let params = [
            ("Action".to_owned(), SNAPSHOT_ACTION.to_owned()),
            ("Since".to_owned(), since.to_string()),
            ("PublicKey".to_owned(), key),
        ];
        match self.post(&params).await? {
            (204, _) => Ok(None),
            (200, body) => Ok(Some(body.to_vec())),
            (status, body) => Err(format!("the IAM authority answered {status}: {}", String::from_utf8_lossy(&body))),
        }
    }
}
