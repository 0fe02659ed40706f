//! `/_tern/replication/{bucket}`: the replication state of a bucket for
//! operators (`GET`: counts, backlog, failures with the AWS reason and a
//! hint of what to fix) and `POST …/retry` to re-queue FAILED versions.
//! Root credentials, or an identity IAM allows: `s3:GetReplicationConfiguration`
//! on the bucket to see, `s3:PutReplicationConfiguration` to retry (the web
//! console calls these as its signed-in user). `…/check` is the root's only.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use serde_json::json;
use tern_store::ReplicationReport;

pub const PREFIX: &str = "/_tern/replication/";

pub struct ReplicationAdmin {
    pub region: Arc<tern_s3::Region>,
    pub root_access_key: String,
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The report as `tern replication status --json` prints it.
#[must_use]
pub fn report_json(report: &ReplicationReport, now_ms: i64) -> serde_json::Value {
    let failed: Vec<_> = report
        .failures
        .iter()
        .map(|t| {
            let reason = t.reason.clone().unwrap_or_default();
            let hint = tern_replication_model::Failure::parse(&reason).map_or_else(
                || "see the reason; then run `tern replication retry`".to_owned(),
                |failure| failure.reason.hint(&t.role, &t.destination),
            );
            json!({
                "key": t.key,
                "version_id": t.version_id,
                "destination": t.destination,
                "rule": t.rule_id,
                "reason": reason,
                "hint": hint,
            })
        })
        .collect();
    json!({
        "counts": {"PENDING": report.pending, "COMPLETED": report.completed, "FAILED": report.failed},
        "backlog_bytes": report.backlog_bytes,
        "oldest_pending_seconds": report.oldest_pending_ms.map_or(0, |t| (now_ms - t).max(0) / 1000),
        "failed": failed,
    })
}

/// The bucket and the action (`""`, `retry` or `check`) a path names.
fn target(path: &str) -> (&str, &str) {
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    rest.split_once('/').unwrap_or((rest, ""))
}

fn respond(value: &serde_json::Value) -> S3Response<Body> {
    let mut response = S3Response::new(Body::from(value.to_string()));
    response.status = Some(StatusCode::OK);
    response.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[async_trait]
impl S3Route for ReplicationAdmin {
    fn is_match(&self, _: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        uri.path().starts_with(PREFIX)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let Some(credentials) = &req.credentials else {
            return Err(s3_error!(AccessDenied, "Tern's replication API needs a signed request."));
        };
        if credentials.access_key == self.root_access_key {
            return Ok(());
        }
        let (bucket, action) = target(req.uri.path());
        // The check reads the role's rights in both regions with the root's
        // reach: it is the root's alone.
        if action == "check" {
            return Err(s3_error!(AccessDenied, "The replication check needs the root credentials."));
        }
        // The outer layer read the token (header or query) once.
        let token = req.extensions.get::<crate::auth::SessionToken>().map(|t| t.0.as_str());
        let identity = self
            .region
            .iam
            .identity(&credentials.access_key, token)
            .ok_or_else(|| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
        let action =
            if req.method == Method::GET { "s3:GetReplicationConfiguration" } else { "s3:PutReplicationConfiguration" };
        let principal = identity.principal.from(crate::listener::origin(&req.extensions));
        let context = tern_iam::policy::RequestContext::of(&principal);
        self.region.authorize_in(&principal, action, &format!("arn:aws:s3:::{bucket}"), &context).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let (bucket, action) = target(req.uri.path());
        let meta = &self.region.meta;
        if meta.get_bucket(bucket).await.map_err(|e| s3_error!(InternalError, "{e}"))?.is_none() {
            return Err(s3_error!(NoSuchBucket, "The specified bucket does not exist in this region"));
        }
        let internal = |e: tern_store::StoreError| s3_error!(InternalError, "{e}");
        match (req.method.clone(), action) {
            (Method::GET, "") => {
                let report = meta.replication_report(bucket).await.map_err(internal)?;
                Ok(respond(&report_json(&report, now_ms())))
            }
            (Method::POST, "retry") => {
                let requeued = meta.retry_failed(bucket, now_ms()).await.map_err(internal)?;
                Ok(respond(&json!({ "requeued": requeued })))
            }
            (Method::GET, "check") => {
                let checks = self.region.check_replication(bucket).await?;
                let rules: Vec<_> = checks
                    .iter()
                    .map(|c| {
                        json!({
                            "rule": c.rule,
                            "destination": c.destination,
                            "ok": c.problems.is_empty(),
                            "problems": c.problems,
                            "warnings": c.warnings,
                        })
                    })
                    .collect();
                Ok(respond(&json!({ "rules": rules })))
            }
            _ => Err(s3_error!(MethodNotAllowed)),
        }
    }
}
