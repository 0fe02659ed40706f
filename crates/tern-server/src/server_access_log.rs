//! Server access logs in AWS's S3 format, for operators who feed them to
//! the tools that read AWS's: `[access_log] dir` gets a file per bucket and
//! hour, `<dir>/<bucket>/<YYYY-MM-DD-HH>-<region>.log`, one line per request
//! about the bucket. Requests are never slowed: lines go through a bounded
//! queue to a thread of their own, and are dropped (and counted in the
//! region's log) when it is full. Only buckets that exist in this region get
//! a file, so no caller can make directories by naming buckets.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// Lines waiting for the writer; beyond this they are dropped.
const QUEUE: usize = 8192;
/// How long the writer trusts what it learned of a bucket's existence.
const KNOWN_FOR: Duration = Duration::from_mins(1);

/// One request, in the fields of AWS's format.
pub struct Entry {
    pub bucket: String,
    pub at: OffsetDateTime,
    pub line: String,
}

/// The sending end, kept by the outer layer.
pub struct ServerAccessLog {
    queue: SyncSender<Entry>,
    /// Lines dropped since the last warning, and when that was.
    dropped: std::sync::Mutex<(u64, Option<Instant>)>,
}

/// At most one warning about dropped lines in this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl ServerAccessLog {
    /// Starts the writer of `region`'s files under `dir`; `exists` says
    /// whether a bucket is this region's.
    pub fn start(dir: PathBuf, region: String, exists: Arc<dyn Fn(&str) -> bool + Send + Sync>) -> Self {
        let (queue, entries) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name(format!("access-log-{region}"))
            .spawn(move || write_all(&dir, &region, entries, &*exists))
            .expect("a thread for the access log");
        Self { queue, dropped: std::sync::Mutex::new((0, None)) }
    }

    pub fn push(&self, entry: Entry) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(entry) {
            let mut dropped = self.dropped.lock().expect("dropped lock");
            dropped.0 += 1;
            if dropped.1.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                tracing::warn!("server access log is behind: {} line(s) dropped", dropped.0);
                *dropped = (0, Some(Instant::now()));
            }
        }
    }
}

fn write_all(dir: &std::path::Path, region: &str, entries: Receiver<Entry>, exists: &dyn Fn(&str) -> bool) {
    let mut known: HashMap<String, (bool, Instant)> = HashMap::new();
    let mut open: HashMap<PathBuf, std::fs::File> = HashMap::new();
    for entry in entries {
        let fresh = known.get(&entry.bucket).is_some_and(|(_, at)| at.elapsed() < KNOWN_FOR);
        if !fresh {
            if known.len() > 4096 {
                known.clear();
            }
            known.insert(entry.bucket.clone(), (exists(&entry.bucket), Instant::now()));
        }
        if !known[&entry.bucket].0 {
            continue;
        }
        let hour = format!(
            "{:04}-{:02}-{:02}-{:02}",
            entry.at.year(),
            u8::from(entry.at.month()),
            entry.at.day(),
            entry.at.hour()
        );
        let path = dir.join(&entry.bucket).join(format!("{hour}-{region}.log"));
        if !open.contains_key(&path) {
            // A new hour: the files of past hours are done.
            open.retain(|p, _| p.to_string_lossy().contains(&hour));
            match append(&path) {
                Ok(file) => {
                    open.insert(path.clone(), file);
                }
                Err(e) => {
                    tracing::warn!("server access log {}: {e}", path.display());
                    continue;
                }
            }
        }
        if let Some(file) = open.get_mut(&path)
            && let Err(e) = writeln!(file, "{}", entry.line)
        {
            tracing::warn!("server access log {}: {e}", path.display());
        }
    }
}

fn append(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        tern_store::private::dir_all(parent)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// What AWS's format says of one request.
pub struct Served<'a> {
    pub owner: &'a str,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub remote_ip: Option<std::net::IpAddr>,
    pub requester: Option<&'a str>,
    pub request_id: &'a str,
    pub method: &'a http::Method,
    pub path: &'a str,
    pub subresource: Option<&'a str>,
    pub status: u16,
    /// The S3 error code an error answer carried.
    pub error_code: Option<&'a str>,
    pub bytes_sent: Option<u64>,
    pub object_size: Option<u64>,
    pub total: Duration,
    pub user_agent: Option<&'a str>,
    pub version_id: Option<&'a str>,
    pub signature: Option<(&'a str, &'a str)>,
    pub tls: bool,
    pub host: Option<&'a str>,
}

/// The line, in the order and quoting of AWS's server access log format;
/// `-` for what is not known. The query string is left out of the request
/// URI: a presigned URL's carries credentials.
pub fn line(r: &Served<'_>, at: OffsetDateTime) -> String {
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let time = format!(
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        at.day(),
        &format!("{:?}", at.month())[..3],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let kind = r
        .subresource
        .map_or_else(|| if r.key.is_some() { "OBJECT".to_owned() } else { "BUCKET".to_owned() }, str::to_uppercase);
    let quoted = |v: Option<&str>| format!("\"{}\"", v.unwrap_or("-").replace('"', "%22"));
    // The condition keys' values, as the log names them.
    let (signature, auth) = r.signature.map_or(("-", "-"), |(version, kind)| {
        let version = if version == "AWS4-HMAC-SHA256" { "SigV4" } else { "SigV2" };
        let kind = match kind {
            "REST-HEADER" => "AuthHeader",
            "REST-QUERY-STRING" => "QueryString",
            other => other,
        };
        (version, kind)
    });
    let key = r.key.map(form_encode);
    [
        r.owner.to_owned(),
        r.bucket.to_owned(),
        time,
        dash(r.remote_ip.map(|ip| ip.to_string())),
        dash(r.requester.map(str::to_owned)),
        r.request_id.to_owned(),
        format!("REST.{}.{kind}", r.method),
        dash(key),
        quoted(Some(&format!("{} {} HTTP/1.1", r.method, r.path))),
        r.status.to_string(),
        dash(r.error_code.map(str::to_owned)),
        dash(r.bytes_sent.map(|n| n.to_string())),
        dash(r.object_size.map(|n| n.to_string())),
        r.total.as_millis().to_string(),
        "-".to_owned(),
        quoted(None),
        quoted(r.user_agent),
        dash(r.version_id.map(str::to_owned)),
        "-".to_owned(),
        signature.to_owned(),
        "-".to_owned(),
        auth.to_owned(),
        // A field of its own: a Host with a space in it would split it.
        dash(r.host.filter(|h| !h.contains(char::is_whitespace)).map(str::to_owned)),
        if r.tls { "TLSv1.3" } else { "-" }.to_owned(),
        "-".to_owned(),
        "-".to_owned(),
    ]
    .join(" ")
}

/// A key as AWS writes it in access logs: URL-encoded, `/` kept.
fn form_encode(key: &str) -> String {
    key.split('/')
        .map(|part| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_awss_fields_in_awss_order() {
        let at = time::macros::datetime!(2026-11-29 16:05:09 UTC);
        let request = Served {
            owner: "000000000000",
            bucket: "photos",
            key: Some("2026/a b.jpg"),
            remote_ip: Some("192.0.2.3".parse().unwrap()),
            requester: Some("arn:aws:iam::000000000000:user/alice"),
            request_id: "3E57427F3EXAMPLE",
            method: &http::Method::GET,
            path: "/photos/2026/a%20b.jpg",
            subresource: None,
            status: 200,
            error_code: None,
            bytes_sent: Some(5),
            object_size: Some(5),
            total: Duration::from_millis(7),
            user_agent: Some("aws-cli/2 \"quoted\""),
            version_id: Some("v1"),
            signature: Some(("AWS4-HMAC-SHA256", "REST-HEADER")),
            tls: true,
            host: Some("127.0.0.1:9100"),
        };
        assert_eq!(
            line(&request, at),
            "000000000000 photos [29/Nov/2026:16:05:09 +0000] 192.0.2.3 arn:aws:iam::000000000000:user/alice \
             3E57427F3EXAMPLE REST.GET.OBJECT 2026/a+b.jpg \"GET /photos/2026/a%20b.jpg HTTP/1.1\" 200 - 5 5 7 - \
             \"-\" \"aws-cli/2 %22quoted%22\" v1 - SigV4 - AuthHeader 127.0.0.1:9100 TLSv1.3 - -"
        );
        let listing = Served { key: None, subresource: Some("versions"), ..request };
        assert!(line(&listing, at).contains(" REST.GET.VERSIONS - "));
        let missing = Served { status: 404, error_code: Some("NoSuchKey"), bytes_sent: Some(243), ..request };
        assert!(line(&missing, at).contains(r#" HTTP/1.1" 404 NoSuchKey 243 "#), "{}", line(&missing, at));
    }
}
