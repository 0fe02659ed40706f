//! How a follower region reaches the IAM authority region: signed calls as
//! the deployment's root on Tern's internal IAM routes, a forwarded call
//! naming the caller the follower authenticated.

use async_trait::async_trait;
use bytes::Bytes;
use tern_iam::policy::Principal;
use tern_iam::{IamAuthority, SnapshotRequest};

use crate::internal_routes;
use crate::peer::{PeerClient, PeerRequest};

pub struct HttpIamAuthority {
    pub peer: PeerClient,
    /// This (the forwarding) region.
    pub region: String,
}

/// Form-encodes query-protocol parameters.
pub fn encode_form(params: &[(String, String)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

#[async_trait]
impl IamAuthority for HttpIamAuthority {
    fn region(&self) -> &str {
        self.peer.region()
    }

    async fn forward(&self, caller: &Principal, params: &[(String, String)]) -> Result<(u16, Vec<u8>), String> {
        let named = internal_routes::caller_headers(caller);
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            (internal_routes::FORWARDED_BY_HEADER, self.region.as_str()),
        ];
        headers.extend(named.iter().map(|(name, value)| (*name, value.as_str())));
        let request = PeerRequest {
            service: "iam",
            method: http::Method::POST,
            path_and_query: internal_routes::IAM_FORWARD,
            headers: &headers,
            body: Bytes::from(encode_form(params)),
        };
        let (status, body) = self.peer.request(request).await.map_err(|e| format!("{e:#}"))?;
        Ok((status.as_u16(), body.to_vec()))
    }

    async fn snapshot(&self, request: &SnapshotRequest) -> Result<Option<Vec<u8>>, String> {
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let headers = [("content-type", "application/json")];
        let request = PeerRequest {
            service: "iam",
            method: http::Method::POST,
            path_and_query: internal_routes::IAM_SNAPSHOT,
            headers: &headers,
            body: Bytes::from(body),
        };
        match self.peer.request(request).await.map_err(|e| format!("{e:#}"))? {
            (status, _) if status == http::StatusCode::NO_CONTENT => Ok(None),
            (status, body) if status == http::StatusCode::OK => Ok(Some(body.to_vec())),
            (status, body) => Err(format!("the IAM authority answered {status}: {}", String::from_utf8_lossy(&body))),
        }
    }
}
