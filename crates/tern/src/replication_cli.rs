//! `tern replication status|retry`: a bucket's replication state through
//! the region's admin API (`/_tern/replication/…`), signed with the root
//! credentials from the usual AWS environment variables.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tern_server::RootCredentials;
use tern_server::peer::PeerClient;

#[derive(Args)]
pub struct Target {
    /// The S3 endpoint of the bucket's region, e.g. `http://127.0.0.1:9100`.
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    bucket: String,
    /// The endpoint's region [default: `AWS_REGION`, `AWS_DEFAULT_REGION`, us-east-1].
    #[arg(long)]
    region: Option<String>,
}

#[derive(Subcommand)]
pub enum ReplicationCommand {
    /// Counts per status, backlog, and every FAILED version with its reason and what to fix.
    Status {
        #[command(flatten)]
        target: Target,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// First wait (up to this many seconds) until no version is PENDING.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "60")]
        wait: Option<u64>,
    },
    /// Re-queue every FAILED version of the bucket (PENDING, then COMPLETED or FAILED again).
    Retry {
        #[command(flatten)]
        target: Target,
    },
    /// Without moving data: can every rule work? Prints what is missing and
    /// where (trust policy, S3 and KMS permissions in both regions, keys,
    /// destination bucket); exits 1 if anything is.
    Check {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
}

fn client(target: &Target) -> anyhow::Result<PeerClient> {
    let access_key_id = std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?;
    let secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?;
    let region = target
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let root = RootCredentials { access_key_id, secret_access_key: secret_access_key.into() };
    Ok(PeerClient::new(&tern_server::tls::client_http()?, &target.endpoint, &region, &root))
}

async fn call(target: &Target, method: http::Method, suffix: &str) -> anyhow::Result<serde_json::Value> {
    let path = format!("/_tern/replication/{}{suffix}", target.bucket);
    let (status, body) = client(target)?.send(method, &path, bytes::Bytes::new()).await?;
    if !status.is_success() {
        bail!("{} answered {status}: {}", target.endpoint, String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

pub async fn run(command: ReplicationCommand) -> anyhow::Result<()> {
    match command {
        ReplicationCommand::Status { target, json, wait } => {
            let report = match wait {
                Some(seconds) => settled(&target, std::time::Duration::from_secs(seconds)).await?,
                None => call(&target, http::Method::GET, "").await?,
            };
            if json {
                println!("{report}");
            } else {
                print!("{}", render(&target.bucket, &report));
            }
        }
        ReplicationCommand::Check { target, json } => {
            let report = call(&target, http::Method::GET, "/check").await?;
            let rules = report["rules"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{report}");
            } else {
                for rule in &rules {
                    print!("{}", render_check(rule));
                }
            }
            if rules.iter().any(|r| r["ok"] != true) {
                std::process::exit(1);
            }
        }
        ReplicationCommand::Retry { target } => {
            let answer = call(&target, http::Method::POST, "/retry").await?;
            println!("re-queued {} failed version(s) of s3://{}", answer["requeued"], target.bucket);
        }
    }
    Ok(())
}

/// One rule's findings: problems (it cannot work) and warnings (it works,
/// but skips or stores something otherwise than its owner may expect).
fn render_check(rule: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let lines = |field: &str| -> Vec<String> {
        let items = rule[field].as_array().cloned().unwrap_or_default();
        items.iter().map(|item| item.as_str().unwrap_or_default().to_owned()).collect()
    };
    let (problems, warnings) = (lines("problems"), lines("warnings"));
    let verdict = match (problems.len(), warnings.len()) {
        (0, 0) => "ok".to_owned(),
        (0, n) => format!("ok, {n} warning(s)"),
        _ => "cannot work".to_owned(),
    };
    let mut out = format!(
        "rule {} -> {}: {verdict}\n",
        rule["rule"].as_str().unwrap_or_default(),
        rule["destination"].as_str().unwrap_or_default()
    );
    for problem in problems {
        let _ = writeln!(out, "  - {problem}");
    }
    for warning in warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    out
}

/// The bucket's report once nothing is PENDING, or when `patience` runs out
/// (an error: what is still pending is the operator's next question).
async fn settled(target: &Target, patience: std::time::Duration) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let report = call(target, http::Method::GET, "").await?;
        let pending = report["counts"]["PENDING"].as_u64().unwrap_or(0);
        if pending == 0 {
            return Ok(report);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{pending} version(s) of s3://{} still PENDING after {} s", target.bucket, patience.as_secs());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn render(bucket: &str, report: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let count = |state: &str| report["counts"][state].as_u64().unwrap_or(0);
    let mut out = format!("replication of s3://{bucket}\n");
    let _ = writeln!(
        out,
        "  PENDING    {:>8}   backlog {} bytes, oldest {} s",
        count("PENDING"),
        report["backlog_bytes"],
        report["oldest_pending_seconds"]
    );
    let _ = writeln!(out, "  COMPLETED  {:>8}\n  FAILED     {:>8}", count("COMPLETED"), count("FAILED"));
    let failed = report["failed"].as_array().cloned().unwrap_or_default();
    if !failed.is_empty() {
        out += "failed versions:\n";
    }
    for f in failed {
        let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
        let _ = writeln!(
            out,
            "  {} (version {}) -> {}: {}\n    fix: {}",
            text("key"),
            text("version_id"),
            text("destination"),
            text("reason"),
            text("hint")
        );
    }
    out
}
