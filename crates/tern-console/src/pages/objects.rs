//! The object browser: a bucket's keys by prefix (or every version),
//! each with how it is encrypted; download, upload with progress, delete.

use aws_sdk_s3::primitives::ByteStream;
use http::{Response, StatusCode, header};
use http_body_util::BodyExt as _;
use maud::{Markup, html};
use s3s::Body;

use super::buckets::encode;
use super::{encryption_of, sdk_error};
use crate::clients::RegionClients;
use crate::html::{self, Section};
use crate::request::ConsoleRequest;
use crate::session::Session;
use crate::{Console, PREFIX};

/// A page of keys; HEADs (for encryption) run for each.
const PAGE: i32 = 100;
/// The console holds an upload in memory on its way to S3: larger files go
/// with the aws cli, which streams them in parts.
const MAX_UPLOAD: usize = 64 * 1024 * 1024;
/// How long an upload waits for its share of that budget.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One row of the listing.
struct Entry {
    key: String,
    version_id: Option<String>,
    latest: bool,
    delete_marker: bool,
    size: i64,
    modified: String,
    encryption: String,
}

pub async fn browse(console: &Console, session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, home) = match super::bucket_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    let prefix = req.param("prefix").unwrap_or_default();
    let versions = req.param("versions") == Some("1");
    let listed =
        if versions { list_versions(home, bucket, prefix).await } else { list_current(home, bucket, prefix).await };
    let content = html! {
        (breadcrumbs(bucket, prefix, versions))
        @match &listed {
            Ok((folders, entries)) => (listing(bucket, folders, entries, versions, session)),
            Err(why) => (html::refusal("Listing", why)),
        }
        (upload_form(bucket, prefix, session))
    };
    html::page(session, &console.region, Some(Section::Buckets), &format!("{bucket} ({})", home.name), &content)
}

async fn list_current(home: &RegionClients, bucket: &str, prefix: &str) -> Result<(Vec<String>, Vec<Entry>), String> {
    let listed = home.s3.list_objects_v2().bucket(bucket).prefix(prefix).delimiter("/").max_keys(PAGE).send().await;
    let listed = listed.map_err(|e| sdk_error(&e))?;
    let folders = listed.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)).collect();
    let entries = futures::future::join_all(listed.contents().iter().filter_map(|o| {
        let key = o.key()?.to_owned();
        let (size, modified) =
            (o.size().unwrap_or_default(), o.last_modified().map(ToString::to_string).unwrap_or_default());
        Some(async move {
            let encryption = describe(home, bucket, &key, None).await;
            Entry { key, version_id: None, latest: true, delete_marker: false, size, modified, encryption }
        })
    }))
    .await;
    Ok((folders, entries))
}

async fn list_versions(home: &RegionClients, bucket: &str, prefix: &str) -> Result<(Vec<String>, Vec<Entry>), String> {
    let listed =
        home.s3.list_object_versions().bucket(bucket).prefix(prefix).delimiter("/").max_keys(PAGE).send().await;
    let listed = listed.map_err(|e| sdk_error(&e))?;
    let folders = listed.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)).collect();
    let versions = futures::future::join_all(listed.versions().iter().filter_map(|v| {
        let (key, version_id) = (v.key()?.to_owned(), v.version_id().map(str::to_owned));
        let (size, modified) =
            (v.size().unwrap_or_default(), v.last_modified().map(ToString::to_string).unwrap_or_default());
        let latest = v.is_latest().unwrap_or_default();
        Some(async move {
            let encryption = describe(home, bucket, &key, version_id.as_deref()).await;
            Entry { key, version_id, latest, delete_marker: false, size, modified, encryption }
        })
    }))
    .await;
    let markers = listed.delete_markers().iter().filter_map(|m| {
        Some(Entry {
            key: m.key()?.to_owned(),
            version_id: m.version_id().map(str::to_owned),
            latest: m.is_latest().unwrap_or_default(),
            delete_marker: true,
            size: 0,
            modified: m.last_modified().map(ToString::to_string).unwrap_or_default(),
            encryption: String::new(),
        })
    });
    let mut entries: Vec<Entry> = versions.into_iter().chain(markers).collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key).then(b.modified.cmp(&a.modified)));
    Ok((folders, entries))
}

/// How the object is encrypted, from its HEAD (an SSE-C object answers
/// 400 without its key: that says enough).
async fn describe(home: &RegionClients, bucket: &str, key: &str, version_id: Option<&str>) -> String {
    match home.s3.head_object().bucket(bucket).key(key).set_version_id(version_id.map(str::to_owned)).send().await {
        Ok(head) => encryption_of(&head),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 400) => {
            "SSE-C (needs the customer's key)".to_owned()
        }
        Err(e) => format!("unknown: {}", sdk_error(&e)),
    }
}

fn breadcrumbs(bucket: &str, prefix: &str, versions: bool) -> Markup {
    let mut walked = String::new();
    let steps: Vec<(String, String)> = prefix
        .split_inclusive('/')
        .map(|part| {
            walked.push_str(part);
            (part.to_owned(), walked.clone())
        })
        .collect();
    let to = |p: &str, v: bool| {
        format!("{PREFIX}bucket?bucket={}&prefix={}{}", encode(bucket), encode(p), if v { "&versions=1" } else { "" })
    };
    html! {
        nav.breadcrumbs aria-label="Prefix" {
            a href=(to("", versions)) { (bucket) }
            @for (part, path) in &steps { " / " a href=(to(path, versions)) { (part) } }
            " · "
            @if versions { a href=(to(prefix, false)) { "Hide versions" } } @else { a href=(to(prefix, true)) { "Show versions" } }
            " · "
            a href={ (PREFIX) "replication?bucket=" (encode(bucket)) } { "Replication" }
        }
    }
}

fn listing(bucket: &str, folders: &[String], entries: &[Entry], versions: bool, session: &Session) -> Markup {
    let folder = |p: &str| {
        format!(
            "{PREFIX}bucket?bucket={}&prefix={}{}",
            encode(bucket),
            encode(p),
            if versions { "&versions=1" } else { "" }
        )
    };
    html! {
        table {
            caption { "Objects" @if versions { " and their versions" } }
            thead { tr {
                th scope="col" { "Key" }
                @if versions { th scope="col" { "Version" } }
                th scope="col" { "Size" } th scope="col" { "Last modified" } th scope="col" { "Encryption" } th scope="col" { "Actions" }
            } }
            tbody {
                @for p in folders {
                    tr { td { a href=(folder(p)) { (p) } } @if versions { td {} } td {} td {} td {} td {} }
                }
                @for e in entries {
                    tr {
                        td.mono { (e.key) }
                        @if versions {
                            td.mono {
                                (e.version_id.as_deref().unwrap_or("null"))
                                @if e.latest { " (current)" }
                                @if e.delete_marker { " delete marker" }
                            }
                        }
                        td { (e.size) }
                        td { (e.modified) }
                        td.mono { (e.encryption) }
                        td { (actions(bucket, e, session)) }
                    }
                }
            }
        }
        @if folders.is_empty() && entries.is_empty() { p.muted { "Nothing here." } }
    }
}

fn actions(bucket: &str, e: &Entry, session: &Session) -> Markup {
    let version = e.version_id.as_deref().map(|v| format!("&version={}", encode(v))).unwrap_or_default();
    let download = format!("{PREFIX}object?bucket={}&key={}{version}", encode(bucket), encode(&e.key));
    html! {
        @if !e.delete_marker { a href=(download) aria-label={ "Download " (e.key) } { "Download" } " " }
        form.inline method="post" action={ (PREFIX) "delete" } {
            (html::csrf_field(session))
            input type="hidden" name="bucket" value=(bucket);
            input type="hidden" name="key" value=(e.key);
            @if let Some(v) = &e.version_id { input type="hidden" name="version" value=(v); }
            button.danger type="submit" aria-label={ "Delete " (e.key) } { "Delete" }
        }
    }
}

fn upload_form(bucket: &str, prefix: &str, session: &Session) -> Markup {
    html! {
        form #upload hidden method="post" action={ (PREFIX) "upload" } data-bucket=(bucket) data-prefix=(prefix) data-csrf=(session.csrf) {
            fieldset {
                legend { "Upload to " (bucket) "/" (prefix) }
                label for="upload-file" { "File" }
                input #upload-file type="file" name="file";
                button type="submit" { "Upload" }
                " "
                progress #upload-progress max="1" value="0" aria-label="Upload progress" {}
                span #upload-status role="status" {}
            }
        }
        noscript { p.muted { "Uploading from the console needs JavaScript; the aws cli uploads too." } }
    }
}

pub async fn download(session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, key, home) = match super::object_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    let got = home
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(req.param("version").map(str::to_owned))
        .send()
        .await;
    let got = match got {
        Ok(got) => got,
        Err(e) => return html::status_page(StatusCode::FORBIDDEN, &sdk_error(&e)),
    };
    let length = got.content_length();
    let stream = futures::stream::unfold(got.body, |mut body| async move {
        match body.try_next().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk)), body)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), body)),
        }
    });
    let mut response = Response::new(Body::http_body_unsync(http_body_util::StreamBody::new(stream)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if let Some(n) = length {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(n));
    }
    if let Ok(disposition) = header::HeaderValue::from_str(&attachment(key)) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// `Content-Disposition` naming the key's last segment: ASCII letters,
/// digits and `._-` as they are, RFC 5987 for the exact name.
fn attachment(key: &str) -> String {
    let name = key.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("object");
    let plain: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let exact: String = form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20");
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}")
}

/// Stores the request's body as an object; `budget` is the MiB of uploads
/// the console may hold in memory at once.
pub async fn upload(budget: &tokio::sync::Semaphore, session: &Session, req: ConsoleRequest) -> Response<Body> {
    let (bucket, key, home) = match super::object_of(session, &req).await {
        Ok((bucket, key, home)) => (bucket.to_owned(), key.to_owned(), home),
        Err(refusal) => return refusal.page(),
    };
    let too_large = "The console uploads up to 64 MiB; use the aws cli for more.";
    let length =
        req.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|n| n.parse::<usize>().ok());
    let Some(length) = length else {
        return html::status_page(StatusCode::LENGTH_REQUIRED, "An upload names its length.");
    };
    if length > MAX_UPLOAD {
        return html::status_page(StatusCode::PAYLOAD_TOO_LARGE, too_large);
    }
    // Every upload in flight is held in memory: all of them together share one budget.
    let mebibytes = u32::try_from(length.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX);
    let Ok(Ok(_held)) = tokio::time::timeout(BUDGET_WAIT, budget.acquire_many(mebibytes)).await else {
        return html::status_page(StatusCode::SERVICE_UNAVAILABLE, "Too many uploads at once: try again shortly.");
    };
    let Some(body) = req.body else { return html::status_page(StatusCode::BAD_REQUEST, "The upload has no body.") };
    let bytes = match http_body_util::Limited::new(body, length).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return html::status_page(StatusCode::PAYLOAD_TOO_LARGE, too_large),
    };
    match home.s3.put_object().bucket(&bucket).key(&key).body(ByteStream::from(bytes)).send().await {
        Ok(_) => html::json_response(&serde_json::json!({"bucket": bucket, "key": key})),
        Err(e) => html::status_page(StatusCode::FORBIDDEN, &sdk_error(&e)),
    }
}

pub async fn delete(session: &Session, req: &ConsoleRequest) -> Response<Body> {
    let (bucket, key, home) = match super::object_of(session, req).await {
        Ok(found) => found,
        Err(refusal) => return refusal.page(),
    };
    let version = req.param("version").map(str::to_owned);
    match home.s3.delete_object().bucket(bucket).key(key).set_version_id(version.clone()).send().await {
        Ok(_) => {
            let prefix = key.rfind('/').map_or("", |i| &key[..=i]);
            let versions = if version.is_some() { "&versions=1" } else { "" };
            html::redirect(&format!("{PREFIX}bucket?bucket={}&prefix={}{versions}", encode(bucket), encode(prefix)))
        }
        Err(e) => html::status_page(StatusCode::FORBIDDEN, &sdk_error(&e)),
    }
}
