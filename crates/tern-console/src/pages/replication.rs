//! A bucket's replication: its rules, the state of its versions
//! (PENDING/COMPLETED/FAILED, backlog, a live lag chart), each failure with
//! its AWS reason and what to fix, a retry, and the preflight check. The
//! state comes from Tern's `/_tern/replication/{bucket}` routes of the
//! bucket's region, called as the user (`s3:GetReplicationConfiguration`
//! to see, `s3:PutReplicationConfiguration` to retry).

use aws_sdk_s3::types::ReplicationRule;
use http::{Method, Response, StatusCode};
use maud::{Markup, html};
use s3s::Body;
use serde_json::Value;

use super::buckets::encode;
use super::sdk_error;
use crate::clients::RegionClients;
use crate::html::{self, Section};
use crate::request::ConsoleRequest;
use crate::session::Session;
use crate::{Console, PREFIX};

/// One of Tern's replication routes of `bucket`, as JSON.
async fn admin(home: &RegionClients, method: Method, bucket: &str, suffix: &str) -> Result<Value, String> {
    let path = format!("/_tern/replication/{}{suffix}", encode(bucket));
    let (status, body) = home.admin.send(method, &path, bytes::Bytes::new()).await.map_err(|e| format!("{e:#}"))?;
    if !status.is_success() {
        return Err(refusal_text(status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// An S3 error document's code and message, or the status.
fn refusal_text(status: http::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        Some(text[start..].split('<').next()?.to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => status.to_string(),
    }
}

pub async fn show(console: &Console, session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, home) = match super::bucket_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    let (rules, report, check) = tokio::join!(
        home.s3.get_bucket_replication().bucket(bucket).send(),
        admin(home, Method::GET, bucket, ""),
        admin(home, Method::GET, bucket, "/check"),
    );
    let content = html! {
        p { a href={ (PREFIX) "bucket?bucket=" (encode(bucket)) } { "Objects of " (bucket) } " · in " (home.name) }
        @match &rules {
            Ok(out) => (rules_table(out.replication_configuration().map(aws_sdk_s3::types::ReplicationConfiguration::rules).unwrap_or_default())),
            Err(e) => (html::refusal("GetBucketReplication", &sdk_error(e))),
        }
        @match &report {
            Ok(report) => (state(bucket, report, session)),
            Err(why) => (html::refusal("Replication state", why)),
        }
        @match &check {
            Ok(check) => (findings(check)),
            Err(why) => (html::refusal("Preflight check", why)),
        }
    };
    html::page(session, &console.region, Some(Section::Buckets), &format!("Replication of {bucket}"), &content)
}

fn rules_table(rules: &[ReplicationRule]) -> Markup {
    html! {
        table {
            caption { "Rules" }
            thead { tr {
                th scope="col" { "Rule" } th scope="col" { "Status" } th scope="col" { "Priority" } th scope="col" { "Filter" }
                th scope="col" { "Destination" } th scope="col" { "SSE-KMS objects" } th scope="col" { "Replica key" }
                th scope="col" { "Delete markers" }
            } }
            tbody {
                @for rule in rules {
                    @let destination = rule.destination();
                    tr {
                        td { (rule.id().unwrap_or_default()) }
                        td { (rule.status().as_str()) }
                        td { (rule.priority().map(|p| p.to_string()).unwrap_or_default()) }
                        td.mono { (rule.filter().and_then(|f| f.prefix()).unwrap_or_default()) }
                        td.mono { (destination.map(aws_sdk_s3::types::Destination::bucket).unwrap_or_default())
                            @if let Some(class) = destination.and_then(|d| d.storage_class()) { " (" (class.as_str()) ")" } }
                        td { (rule.source_selection_criteria().and_then(|c| c.sse_kms_encrypted_objects()).map_or("not selected", |s| s.status().as_str())) }
                        td.mono { (destination.and_then(|d| d.encryption_configuration()).and_then(|e| e.replica_kms_key_id()).unwrap_or("—")) }
                        td { (rule.delete_marker_replication().and_then(|d| d.status()).map_or("", |s| s.as_str())) }
                    }
                }
                @if rules.is_empty() { tr { td colspan="8" { span.muted { "No rules." } } } }
            }
        }
    }
}

fn state(bucket: &str, report: &Value, session: &Session) -> Markup {
    let count = |state: &str| report["counts"][state].as_u64().unwrap_or(0);
    let failed = report["failed"].as_array().cloned().unwrap_or_default();
    let source = format!("{PREFIX}replication.json?bucket={}", encode(bucket));
    html! {
        h2 { "State of its versions" }
        div.counts {
            div.count { "PENDING" strong #count-pending { (count("PENDING")) } }
            div.count { "COMPLETED" strong #count-completed { (count("COMPLETED")) } }
            div.count { "FAILED" strong #count-failed { (count("FAILED")) } }
            div.count { "Backlog" strong { (report["backlog_bytes"]) " B" } }
        }
        svg #lag-chart .chart viewBox="0 0 720 180" role="img" aria-labelledby="lag-title" data-source=(source) {
            title #lag-title { "PENDING versions and the oldest one's age, sampled every 2 s" }
            polyline #lag-pending .pending points="" {}
            polyline #lag-oldest .oldest points="" {}
        }
        p.legend { span { "— PENDING versions" } span { "- - oldest PENDING, seconds" } span #lag-now role="status" {} }
        h2 { "Failures" }
        @if failed.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                caption { "FAILED versions, with AWS's reason and what to fix" }
                thead { tr { th scope="col" { "Key" } th scope="col" { "Version" } th scope="col" { "To" } th scope="col" { "Reason" } th scope="col" { "Fix" } } }
                tbody {
                    @for f in &failed {
                        tr {
                            td.mono { (f["key"].as_str().unwrap_or_default()) }
                            td.mono { (f["version_id"].as_str().unwrap_or_default()) }
                            td.mono { (f["destination"].as_str().unwrap_or_default()) }
                            td.bad { (f["reason"].as_str().unwrap_or_default()) }
                            td { (f["hint"].as_str().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        form method="post" action={ (PREFIX) "retry" } {
            (html::csrf_field(session))
            input type="hidden" name="bucket" value=(bucket);
            button type="submit" { "Retry failed versions" }
        }
    }
}

fn findings(check: &Value) -> Markup {
    let rules = check["rules"].as_array().cloned().unwrap_or_default();
    let list = |rule: &Value, field: &str| rule[field].as_array().cloned().unwrap_or_default();
    html! {
        h2 { "Preflight check" }
        @for rule in &rules {
            h3 {
                "Rule " (rule["rule"].as_str().unwrap_or_default()) " → " (rule["destination"].as_str().unwrap_or_default()) ": "
                @if rule["ok"] == true { span.good { "can work" } } @else { span.bad { "cannot work" } }
            }
            ul {
                @for problem in list(rule, "problems") { li.bad { (problem.as_str().unwrap_or_default()) } }
                @for warning in list(rule, "warnings") { li { "Warning: " (warning.as_str().unwrap_or_default()) } }
            }
        }
    }
}

/// The state as JSON, for the lag chart.
pub async fn json(session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, home) = match super::bucket_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    match admin(home, Method::GET, bucket, "").await {
        Ok(report) => html::json_response(&report),
        Err(why) => html::status_page(StatusCode::FORBIDDEN, &why),
    }
}

pub async fn retry(session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, home) = match super::bucket_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    match admin(home, Method::POST, bucket, "/retry").await {
        Ok(_) => html::redirect(&format!("{PREFIX}replication?bucket={}", encode(bucket))),
        Err(why) => html::status_page(StatusCode::FORBIDDEN, &why),
    }
}
