//! Buckets of every region, with versioning, default encryption and
//! replication at a glance; and making one.

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use http::{Response, StatusCode};
use maud::{Markup, html};
use s3s::Body;

use super::sdk_error;
use crate::clients::RegionClients;
use crate::html::{self, Section};
use crate::request::ConsoleRequest;
use crate::session::Session;
use crate::{Console, PREFIX};

/// One bucket's settings, each as its region answered (or refused).
struct Glance {
    name: String,
    region: String,
    versioning: String,
    encryption: String,
    replication: Result<Vec<String>, String>,
}

pub async fn list(console: &Console, session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let listed = session.clients.here().s3.list_buckets().send().await;
    let buckets = match listed {
        Ok(listed) => listed.buckets().to_vec(),
        Err(e) => return page(console, session, &html::refusal("ListBuckets", &sdk_error(&e)), None),
    };
    let glances = futures::future::join_all(buckets.iter().filter_map(|b| {
        let name = b.name()?.to_owned();
        let region = b.bucket_region().map_or_else(|| console.region.clone(), str::to_owned);
        let clients = session.clients.region(&region)?;
        Some(glance(clients, name, region))
    }))
    .await;
    let made = req.param("created").map(|name| html! { p.good role="status" { "Bucket " (name) " was created." } });
    page(console, session, &table(&glances), made)
}

async fn glance(clients: &RegionClients, name: String, region: String) -> Glance {
    let s3 = &clients.s3;
    let (versioning, encryption, replication) = tokio::join!(
        s3.get_bucket_versioning().bucket(&name).send(),
        s3.get_bucket_encryption().bucket(&name).send(),
        s3.get_bucket_replication().bucket(&name).send(),
    );
    let versioning = match versioning {
        Ok(v) => v.status().map_or("never enabled", |s| s.as_str()).to_owned(),
        Err(e) => sdk_error(&e),
    };
    let encryption = match encryption {
        Ok(e) => e
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map_or_else(String::new, |d| match d.kms_master_key_id() {
                Some(key) => format!("{} {key}", d.sse_algorithm().as_str()),
                None => d.sse_algorithm().as_str().to_owned(),
            }),
        Err(e) => sdk_error(&e),
    };
    let replication = match replication {
        Ok(r) => Ok(r
            .replication_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|rule| rule.destination().map(|d| d.bucket().to_owned()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.meta().code() == Some("ReplicationConfigurationNotFoundError")) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(sdk_error(&e)),
    };
    Glance { name, region, versioning, encryption, replication }
}

fn table(glances: &[Glance]) -> Markup {
    html! {
        table {
            caption { "Buckets of every region" }
            thead { tr {
                th scope="col" { "Bucket" } th scope="col" { "Region" } th scope="col" { "Versioning" }
                th scope="col" { "Default encryption" } th scope="col" { "Replication" }
            } }
            tbody {
                @for g in glances {
                    tr {
                        td { a href={ (PREFIX) "bucket?bucket=" (encode(&g.name)) } { (g.name) } }
                        td { (g.region) }
                        td { (g.versioning) }
                        td.mono { (g.encryption) }
                        td {
                            a href={ (PREFIX) "replication?bucket=" (encode(&g.name)) } {
                                @match &g.replication {
                                    Ok(to) if to.is_empty() => "none",
                                    Ok(to) => { "to " (to.join(", ")) },
                                    Err(why) => span.refusal { (why) },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn page(console: &Console, session: &Session, content: &Markup, note: Option<Markup>) -> Response<Body> {
    let regions: Vec<&str> = session.clients.regions.iter().map(|r| r.name.as_str()).collect();
    let content = html! {
        @if let Some(note) = note { (note) }
        (content)
        form method="post" action={ (PREFIX) "buckets" } {
            fieldset {
                legend { "Create a bucket" }
                (html::csrf_field(session))
                label for="bucket-name" { "Name" }
                input #bucket-name type="text" name="bucket" required pattern="[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]";
                label for="bucket-region" { "Region" }
                select #bucket-region name="region" {
                    @for region in &regions { option value=(region) { (region) } }
                }
                " "
                button type="submit" { "Create bucket" }
            }
        }
    };
    html::page(session, &console.region, Some(Section::Buckets), "Buckets", &content)
}

pub async fn create(console: &Console, session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, region) = match (req.required("bucket"), req.required("region")) {
        (Ok(bucket), Ok(region)) => (bucket, region),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.page(),
    };
    let Some(clients) = session.clients.region(region) else {
        return html::status_page(StatusCode::BAD_REQUEST, "There is no such region.");
    };
    let mut create = clients.s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        let constraint =
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region));
        create = create.create_bucket_configuration(constraint.build());
    }
    match create.send().await {
        Ok(_) => html::redirect(&format!("{PREFIX}buckets?created={}", encode(bucket))),
        Err(e) => {
            let refused = html::refusal(&format!("CreateBucket {bucket}"), &sdk_error(&e));
            let mut response = page(console, session, &refused, None);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
    }
}

/// A value as it goes in a query string.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
