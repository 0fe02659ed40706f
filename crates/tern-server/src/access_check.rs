//! `GET /_tern/check-access?…`: whether a principal may take an S3 action on
//! a resource of this region, decided here with the bucket's policy as a
//! request would be. Another region's `tern replication check` asks it for
//! a destination bucket it does not hold. Root only; a route between
//! regions (the peer certificate, with mutual TLS).

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use tern_iam::policy::{Principal, RequestContext};

use crate::internal_routes::ACCESS_CHECK;

pub struct AccessCheck {
    pub region: Arc<tern_s3::Region>,
    pub root_access_key: String,
}

/// The query of a check: who (as `tern_iam::policy::Principal` names it),
/// what and on which resource.
#[must_use]
pub fn query(acting: &Principal, action: &str, resource: &str) -> String {
    let mut pairs = vec![("principal", acting.arn.as_str()), ("action", action), ("resource", resource)];
    if let Some(session) = &acting.session_arn {
        pairs.push(("session", session));
    }
    if let Some(service) = &acting.assumed_by_service {
        pairs.push(("assumed-by", service));
    }
    serde_urlencoded::to_string(pairs).expect("strings encode")
}

#[async_trait]
impl S3Route for AccessCheck {
    fn is_match(&self, method: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        method == Method::GET && uri.path() == ACCESS_CHECK
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        crate::internal_routes::root_only(req, &self.root_access_key)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let query = tern_sigv4::query::Query::of(req.uri.query())
            .map_err(|_| s3_error!(InvalidArgument, "The check's query is malformed."))?;
        let get = |name: &str| query.unique(name).map(str::to_owned);
        let (Some(arn), Some(action), Some(resource)) = (get("principal"), get("action"), get("resource")) else {
            return Err(s3_error!(InvalidArgument, "A check names a principal, an action and a resource."));
        };
        let acting = Principal {
            session_arn: get("session"),
            assumed_by_service: get("assumed-by"),
            ..Principal::of_arn(&self.region.account_id, arn)
        };
        let context = RequestContext::of(&acting);
        self.region.authorize_in(&acting, &action, &resource, &context).await?;
        Ok(S3Response::with_status(Body::empty(), StatusCode::OK))
    }
}
