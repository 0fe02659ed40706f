//! `tern doctor`: whether a deployment can run and runs well, one line per
//! finding, exit 1 if any finding is a failure. It reads the deployment
//! file and the data directory, and asks the regions that serve; it
//! changes nothing.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tern_core::DeploymentConfig;
use tern_server::RootCredentials;
use tern_server::peer::PeerClient;

#[derive(Args)]
pub struct DoctorArgs {
    /// Deployment file (TOML); without it, the embedded default `tern up` runs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The deployment runs with `--tls`: check the local CA and certificates
    /// it made under the data directory, and reach the regions over HTTPS.
    #[arg(long)]
    tls: bool,
}

/// `SigV4` refuses requests more than this far from the server's clock.
const SIGV4_SKEW: Duration = Duration::from_mins(15);
/// A certificate this close to its end is a warning.
const CERT_WARNING: Duration = Duration::from_hours(24 * 30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Findings(Vec<(Level, String, String)>);

impl Findings {
    fn say(&mut self, level: Level, subject: &str, text: impl Into<String>) {
        let label = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let text = text.into();
        println!("{label}  {subject:<12} {text}");
        self.0.push((level, subject.to_owned(), text));
    }

    fn failed(&self) -> bool {
        self.0.iter().any(|(level, ..)| *level == Level::Fail)
    }
}

/// Runs every check; `Ok(false)` if any failed.
pub async fn run(args: DoctorArgs) -> anyhow::Result<bool> {
    let mut found = Findings(Vec::new());
    let deployment = match &args.config {
        Some(path) => DeploymentConfig::load(path).map(|d| (d, path.display().to_string())),
        None => Ok((DeploymentConfig::default(), "the embedded default".to_owned())),
    };
    let (mut deployment, source) = match deployment {
        Ok(loaded) => loaded,
        Err(e) => {
            found.say(Level::Fail, "config", e.to_string());
            return Ok(false);
        }
    };
    if args.tls && !tern_server::local_ca::adopt(&mut deployment) {
        found.say(Level::Fail, "tls", "no local CA under the data directory: `tern up --tls` makes one");
    }
    let names: Vec<&str> = deployment.regions.iter().map(|r| r.name.as_str()).collect();
    found.say(Level::Ok, "config", format!("{source}: regions {}", names.join(", ")));
    data_dir(&deployment, &mut found);
    tls_files(&deployment, &mut found);
    let http = PeerClient::http(deployment.tls.as_ref())?;
    let mut serving = Vec::new();
    for region in &deployment.regions {
        if listener(region.listen, &region.name, &region.endpoint_url(), &http, &mut found).await {
            serving.push(region);
        }
        if let Some(url) = &region.metadata {
            database(&region.name, url, &mut found).await;
        }
    }
    let root = RootCredentials::load_existing(&deployment.data_dir).ok().flatten();
    for region in serving {
        let endpoint = region.endpoint_url();
        match &root {
            Some(root) => replication(&PeerClient::new(&http, &endpoint, &region.name, root), &mut found).await,
            None => found.say(Level::Warn, &region.name, "no root credentials here: replication not summarized"),
        }
    }
    Ok(!found.failed())
}

/// The data directory and the secrets in it are the owner's alone.
fn data_dir(deployment: &DeploymentConfig, found: &mut Findings) {
    let dir = &deployment.data_dir;
    let Ok(meta) = std::fs::metadata(dir) else {
        found.say(Level::Warn, "data", format!("{} does not exist yet (the first start makes it)", dir.display()));
        return;
    };
    let private = |path: &Path| std::fs::metadata(path).map(|m| owner_only(m.permissions().mode()));
    let mut loose: Vec<String> = Vec::new();
    if !owner_only(meta.permissions().mode()) {
        loose.push(dir.display().to_string());
    }
    let secrets = [dir.join("root-credentials"), dir.join("tls")]
        .into_iter()
        .chain(deployment.regions.iter().map(|r| deployment.region_data_dir(&r.name)));
    for path in secrets {
        if private(&path).is_ok_and(|p| !p) {
            loose.push(path.display().to_string());
        }
    }
    if loose.is_empty() {
        found.say(Level::Ok, "data", format!("{} and its secrets are the owner's alone", dir.display()));
    } else {
        found.say(Level::Fail, "data", format!("others may read {}: chmod go-rwx them", loose.join(", ")));
    }
}

/// No permission bit for the group or others, as `chmod go-rwx` leaves it.
#[allow(clippy::verbose_bit_mask)] // the bits read as chmod writes them
const fn owner_only(mode: u32) -> bool {
    mode & 0o077 == 0
}

/// Certificates named by the deployment: readable, and not near their end.
fn tls_files(deployment: &DeploymentConfig, found: &mut Findings) {
    let mut certificates: Vec<(String, PathBuf)> = Vec::new();
    if let Some(tls) = &deployment.tls {
        certificates.push(("CA".to_owned(), tls.ca.clone()));
        certificates.extend(tls.peer_cert.clone().map(|p| ("peer certificate".to_owned(), p)));
    }
    for region in &deployment.regions {
        certificates.extend(region.tls_cert.clone().map(|p| (format!("{} certificate", region.name), p)));
    }
    for (what, path) in certificates {
        match expiry(&path) {
            Ok(left) if left.is_zero() => {
                found.say(Level::Fail, "tls", format!("{what} {} has expired", path.display()));
            }
            Ok(left) if left < CERT_WARNING => {
                let days = left.as_secs() / 86_400;
                found.say(Level::Warn, "tls", format!("{what} {} expires in {days} days", path.display()));
            }
            Ok(left) => {
                let days = left.as_secs() / 86_400;
                found.say(Level::Ok, "tls", format!("{what} {} is valid for {days} more days", path.display()));
            }
            Err(e) => found.say(Level::Fail, "tls", format!("{what} {}: {e}", path.display())),
        }
    }
}

/// How long the first certificate of the PEM file at `path` stays valid
/// (zero once it has ended).
fn expiry(path: &Path) -> anyhow::Result<Duration> {
    let pem = std::fs::read(path)?;
    let (_, block) =
        x509_parser::pem::parse_x509_pem(&pem).map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    let certificate = block.parse_x509().map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    let ends = certificate.validity().time_to_expiration();
    Ok(ends.map_or(Duration::ZERO, time::SignedDuration::unsigned_abs))
}

/// Whether the region serves at its address: serving (with its clock), the
/// port free (not running), or taken by something else. True if serving.
async fn listener(
    listen: SocketAddr,
    name: &str,
    endpoint: &str,
    http: &reqwest::Client,
    found: &mut Findings,
) -> bool {
    let health = http.get(format!("{endpoint}/_tern/health")).timeout(Duration::from_secs(3)).send().await;
    let Ok(answer) = health else {
        not_answering(listen, name, endpoint, found);
        return false;
    };
    let ready = answer.status().is_success();
    if ready {
        found.say(Level::Ok, name, format!("serving at {endpoint}"));
    } else {
        found.say(Level::Fail, name, format!("answering at {endpoint}, but not ready: its stores are unreachable"));
    }
    clock(name, clock_skew(answer.headers()), found);
    ready
}

fn clock(name: &str, skew: Option<Duration>, found: &mut Findings) {
    match skew {
        Some(skew) if skew > SIGV4_SKEW => {
            let text = format!("clock {} s off this machine's: SigV4 allows 900", skew.as_secs());
            found.say(Level::Fail, name, text);
        }
        Some(skew) if skew > Duration::from_mins(1) => {
            found.say(Level::Warn, name, format!("clock {} s off this machine's", skew.as_secs()));
        }
        Some(skew) => found.say(Level::Ok, name, format!("clock within {} s of this machine's", skew.as_secs())),
        None => found.say(Level::Warn, name, "no Date in its answer: clock not compared"),
    }
}

/// Why a region does not answer: its port is free (not running), taken by
/// something else, or cannot be had at all.
fn not_answering(listen: SocketAddr, name: &str, endpoint: &str, found: &mut Findings) {
    match TcpListener::bind(listen) {
        Ok(_) => found.say(Level::Warn, name, format!("not running: {listen} is free, and {endpoint} does not answer")),
        Err(_) if std::net::TcpStream::connect_timeout(&listen, Duration::from_secs(1)).is_ok() => {
            let text = format!(
                "{listen} is taken, but {endpoint} does not answer as this region (serving HTTPS? then `tern doctor --tls`)"
            );
            found.say(Level::Fail, name, text);
        }
        Err(e) => found.say(Level::Fail, name, format!("cannot listen on {listen}: {e}")),
    }
}

/// How far the answer's `Date` is from this machine's clock.
fn clock_skew(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let theirs = httpdate::parse_http_date(date).ok()?;
    let now = std::time::SystemTime::now();
    now.duration_since(theirs).or_else(|e| Ok::<_, ()>(e.duration())).ok()
}

async fn database(region: &str, url: &str, found: &mut Findings) {
    match tokio::time::timeout(Duration::from_secs(5), tern_store::PgStore::probe(url)).await {
        Ok(Ok(server)) => found.say(Level::Ok, region, format!("metadata database {server} answers")),
        Ok(Err(e)) => found.say(Level::Fail, region, format!("metadata database: {e}")),
        Err(_) => found.say(Level::Fail, region, "metadata database: no answer within 5 s"),
    }
}

/// PENDING and FAILED versions of the region's buckets, from its own
/// replication routes (root-signed, as `tern replication status`).
async fn replication(peer: &PeerClient, found: &mut Findings) {
    let region = peer.region().to_owned();
    let listed = match peer.send(http::Method::GET, &format!("/?bucket-region={region}"), bytes::Bytes::new()).await {
        Ok((status, body)) if status.is_success() => String::from_utf8_lossy(&body).into_owned(),
        Ok((status, _)) => return found.say(Level::Warn, &region, format!("ListBuckets answered {status}")),
        Err(e) => return found.say(Level::Warn, &region, format!("ListBuckets: {e:#}")),
    };
    let (mut pending, mut failed, mut failing) = (0, 0, Vec::new());
    for bucket in elements(&listed, "Name") {
        let path = format!("/_tern/replication/{bucket}");
        let answer = peer.send(http::Method::GET, &path, bytes::Bytes::new()).await;
        let report = match answer {
            Ok((status, body)) if status.is_success() => serde_json::from_slice::<serde_json::Value>(&body).ok(),
            _ => None,
        };
        let Some(report) = report else {
            found.say(Level::Warn, &region, format!("the replication state of {bucket} could not be read"));
            continue;
        };
        pending += report["counts"]["PENDING"].as_u64().unwrap_or(0);
        let bucket_failed = report["counts"]["FAILED"].as_u64().unwrap_or(0);
        failed += bucket_failed;
        if bucket_failed > 0 {
            failing.push(bucket);
        }
    }
    if failing.is_empty() {
        found.say(Level::Ok, &region, format!("replication: {pending} PENDING, none FAILED"));
    } else {
        found.say(
            Level::Warn,
            &region,
            format!(
                "replication: {pending} PENDING, {failed} FAILED in {}: `tern replication status --bucket B` says why",
                failing.join(", ")
            ),
        );
    }
}

/// The text of every `<name>` element of an S3 XML answer.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open).skip(1).filter_map(|rest| rest.split_once(&close).map(|(text, _)| text.to_owned())).collect()
}
