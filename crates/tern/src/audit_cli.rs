//! `tern audit`: who used which key, when, from where; and `tern audit
//! verify`: whether anyone changed the record of it. Both read the audit
//! files of the deployment's regions directly, so they work with the
//! regions stopped.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tern_audit::query::{Filter, Stored};
use tern_core::DeploymentConfig;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    query: QueryArgs,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every audit file against its hash chain and digest: a changed,
    /// removed, inserted or reordered record fails (exit 1).
    Verify {
        #[command(flatten)]
        deployment: DeploymentArgs,
    },
}

#[derive(Debug, Args)]
struct DeploymentArgs {
    /// The deployment file `tern up --config` takes; without it, the
    /// embedded default (./tern-data).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only this region (default: every region of the deployment).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// A key ARN, or a key id (matching the key in every region).
    #[arg(long)]
    key: Option<String>,
    /// A user, role or session ARN; a role's ARN matches its sessions.
    #[arg(long)]
    principal: Option<String>,
    /// An event name: the AWS operation, such as Decrypt.
    #[arg(long)]
    event: Option<String>,
    /// From this time: RFC 3339 (2026-11-29T08:00:00Z), a date, or an age (15m, 2h, 7d).
    #[arg(long, value_parser = parse_since)]
    since: Option<OffsetDateTime>,
    /// One record per line, exactly as stored.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        Some(AuditCommand::Verify { deployment }) => verify(&deployment),
        None => query(&args.query),
    }
}

/// The deployment and the regions the command is about.
fn regions(args: &DeploymentArgs) -> anyhow::Result<(DeploymentConfig, Vec<String>)> {
    let deployment = match &args.config {
        Some(path) => DeploymentConfig::load(path)?,
        None => DeploymentConfig::default(),
    };
    let names: Vec<String> = deployment.regions.iter().map(|r| r.name.clone()).collect();
    let names = match &args.region {
        Some(region) if names.contains(region) => vec![region.clone()],
        Some(region) => bail!("the deployment has no region {region} (it has {})", names.join(", ")),
        None => names,
    };
    Ok((deployment, names))
}

fn query(args: &QueryArgs) -> anyhow::Result<()> {
    let (deployment, names) = regions(&args.deployment)?;
    let filter = Filter {
        key: args.key.clone(),
        principal: args.principal.clone(),
        event: args.event.clone(),
        since: args.since,
    };
    let mut found: Vec<Stored> = Vec::new();
    for name in &names {
        let region_dir = deployment.region_data_dir(name);
        let trails = tern_audit::trails_of(&region_dir).with_context(|| format!("reading {}", region_dir.display()))?;
        for dir in trails {
            let records = tern_audit::query::records(&dir, &filter);
            found.extend(records.with_context(|| format!("reading {}", dir.display()))?);
        }
        // What is shown is only as good as the chain: say when it is not.
        if deployment.audit.enabled
            && let Err(e) = check(&deployment, name)
        {
            eprintln!("warning: {name}'s trail does not verify, so these records may not be what was recorded: {e:#}");
        }
    }
    // Each trail's records are in order; together, by time.
    found.sort_by(|a, b| a.time().cmp(b.time()));
    let mut out = std::io::stdout().lock();
    for stored in &found {
        if args.json {
            std::io::Write::write_all(&mut out, &stored.line)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        } else {
            std::io::Write::write_all(&mut out, summary(&stored.record).as_bytes())?;
        }
    }
    if !args.json {
        eprintln!("{} record(s)", found.len());
    }
    Ok(())
}

/// One line a person reads: when, where, what, who, from where, on what, how it ended.
fn summary(record: &serde_json::Value) -> String {
    // Callers choose some of these texts: nothing they send reaches a terminal raw.
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").escape_debug().to_string();
    let identity = &record["userIdentity"];
    let who = identity["arn"].as_str().or(identity["invokedBy"].as_str()).unwrap_or("anonymous").escape_debug();
    let via = identity["invokedBy"].as_str().map(|s| format!(" (via {})", s.escape_debug())).unwrap_or_default();
    let on: Vec<String> = record["resources"].as_array().into_iter().flatten().map(|r| text(&r["ARN"])).collect();
    let result = record["errorCode"].as_str().unwrap_or("ok").escape_debug();
    format!(
        "{}  {:<10} {:<28} {}{via}  from {}  on {}  {result}\n",
        text(&record["eventTime"]),
        text(&record["awsRegion"]),
        text(&record["eventName"]),
        who,
        text(&record["sourceIPAddress"]),
        if on.is_empty() { "-".to_owned() } else { on.join(",") },
    )
}

/// Verifies region `name`'s trails (its own, and each front-end's where
/// several share its stores): their files, or why they do not verify.
fn check(deployment: &DeploymentConfig, name: &str) -> anyhow::Result<Vec<tern_audit::verify::FileSummary>> {
    let region_dir = deployment.region_data_dir(name);
    let key =
        tern_server::root_key::load(&region_dir, name).with_context(|| format!("the root key of {name} is needed"))?;
    let key = tern_audit::ChainKey::derived(&key);
    let mut files = Vec::new();
    for dir in tern_audit::trails_of(&region_dir)? {
        files.extend(tern_audit::verify::verify_dir(&dir, &key)?);
    }
    // A region that has run has a trail: none at all is a trail removed.
    anyhow::ensure!(!files.is_empty(), "{} holds no audit file", tern_audit::dir_of(&region_dir, None).display());
    Ok(files)
}

fn verify(args: &DeploymentArgs) -> anyhow::Result<()> {
    let (deployment, names) = regions(args)?;
    let mut failed = Vec::new();
    if !deployment.audit.enabled {
        println!("the deployment's audit trail is off ([audit] enabled = false): nothing to verify");
        return Ok(());
    }
    for name in &names {
        match check(&deployment, name) {
            Ok(files) => {
                let records: u64 = files.iter().map(|f| f.records).sum();
                let open = files.last().is_some_and(|f| !f.closed);
                let note = if open { " (the newest is still open)" } else { "" };
                println!("{name}: verified {} file(s), {records} record(s){note}", files.len());
            }
            Err(finding) => {
                println!("{name}: FAILED: {finding:#}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("the audit trail of {} does not verify", failed.join(", "));
    }
    Ok(())
}

fn parse_since(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &date_format) {
        return Ok(date.midnight().assume_utc());
    }
    let (count, unit) = text.split_at(text.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match count.parse::<i64>() {
        Ok(count) if seconds > 0 && count >= 0 => {
            Ok(OffsetDateTime::now_utc() - time::Duration::seconds(count.saturating_mul(seconds)))
        }
        _ => Err(format!("{text} is not a time: use 2026-11-29T08:00:00Z, 2026-11-29, or an age like 15m, 2h, 7d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_every_documented_form() {
        assert_eq!(parse_since("2026-11-29T08:00:00Z").unwrap().hour(), 8);
        assert_eq!(parse_since("2026-11-29").unwrap().day(), 29);
        let hour_ago = parse_since("1h").unwrap();
        assert!((OffsetDateTime::now_utc() - hour_ago - time::Duration::hours(1)).abs() < time::Duration::seconds(5));
        assert!(parse_since("soon").is_err());
        assert!(parse_since("-1h").is_err());
        assert!(parse_since("").is_err());
    }
}
