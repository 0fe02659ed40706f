//! The attacks of the security review, each performed through the public
//! endpoints of a running Tern, with the proof that it now fails. Every test
//! names the finding it answers (issue 10); SECURITY.md lists them.

mod at_rest;
mod audit;
mod console;
mod exhaustion;
mod iam;
mod kms;
mod replication;
mod s3;
mod signatures;
mod transfer;

use tern_testkit::{Creds, Deployment};

/// An identity policy of `statements` (a JSON array).
pub fn policy(statements: &serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// An IAM user allowed `actions` on `resource` and nothing else.
pub async fn user_allowed(tern: &Deployment, name: &str, actions: &[&str], resource: &str) -> Creds {
    let statements = serde_json::json!([{"Effect": "Allow", "Action": actions, "Resource": resource}]);
    tern.user(name, &policy(&statements)).await.expect("user created")
}

/// An S3 client of `region` signing as `creds`.
pub fn s3_as(tern: &Deployment, region: &str, creds: &Creds) -> aws_sdk_s3::Client {
    tern_testkit::s3_client(&tern.endpoint(region), region, &creds.access_key, &creds.secret)
}

/// The text of `<Code>` in an XML error, or `__type` in a JSON one.
pub fn error_code(body: &str) -> String {
    if let Some(start) = body.find("<Code>") {
        let rest = &body[start + 6..];
        return rest[..rest.find('<').unwrap_or(rest.len())].to_owned();
    }
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["__type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
