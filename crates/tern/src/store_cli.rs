//! `tern store migrate`: moves an embedded region's metadata into
//! PostgreSQL (and, with `--blobs`, its object bytes into a directory its
//! front-ends will share), verified, and safe to run again.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tern_core::{BlobLocation, DeploymentConfig, RegionConfig};
use tern_store::migrate::{Migration, TableSummary};
use tern_store::{LocalBlobs, PgStore, SqliteMeta};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy a stopped embedded region's metadata (buckets, versions, uploads,
    /// configurations, the replication outbox, KMS keys, IAM) into an empty
    /// PostgreSQL database, verify it row for row, and say what to put in
    /// the deployment file. Run again, it verifies and changes nothing.
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Deployment file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// The region to move; stop it first.
    #[arg(long)]
    region: String,
    /// `postgres://user@host:port/database`; `PGPASSWORD` and libpq's other
    /// variables supply what it leaves out.
    #[arg(long)]
    to: String,
    /// `file:///dir` every front-end mounts: the object bytes are copied
    /// there too (without it, they stay in the data directory).
    #[arg(long)]
    blobs: Option<String>,
}

pub async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Migrate(args) => migrate(&args).await,
    }
}

async fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    let deployment = DeploymentConfig::load(&args.config)?;
    let region = deployment.region(&args.region).with_context(|| format!("no region {} in the file", args.region))?;
    if region.metadata.is_some() {
        bail!("region {} keeps its metadata in PostgreSQL already", region.name);
    }
    let moved = moved_region(region, &deployment.region_data_dir(&region.name), args)?;
    // A region that is serving could write after its rows were read.
    if std::net::TcpListener::bind(region.listen).is_err() {
        bail!("something listens on {}: stop region {} before moving it", region.listen, region.name);
    }
    let database = deployment.region_data_dir(&region.name).join("meta.db");
    if !database.exists() {
        bail!("region {} has no embedded metadata at {}", region.name, database.display());
    }
    let source = SqliteMeta::open(&database).await.context("opening the embedded metadata")?;
    let target = PgStore::connect(&args.to).await?;
    let bar = progress_bar("rows");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let outcome = tern_store::migrate::to_postgres(&source, &target, &progress).await?;
    bar.finish_and_clear();
    match outcome {
        Migration::Copied(tables) => report("copied and verified", &tables),
        Migration::AlreadyThere(tables) => report("already there: the database holds exactly this metadata", &tables),
        Migration::TargetDiffers(pairs) => {
            for (source, target) in pairs.iter().filter(|(s, t)| s != t) {
                eprintln!("  {:<18} here {:>8} rows, there {:>8}", source.table, source.rows, target.rows);
            }
            bail!("the database holds other data; nothing was written (give the region an empty database)");
        }
    }
    if let BlobLocation::Directory(shared) = moved.blob_location()?
        && args.blobs.is_some()
    {
        let from = LocalBlobs::open(&deployment.region_data_dir(&region.name).join("blobs"))?;
        let to = LocalBlobs::open(&shared).with_context(|| format!("opening {}", shared.display()))?;
        let bar = progress_bar("blobs");
        let progress = |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        };
        let copied = from.copy_into(&to, &progress).await?;
        bar.finish_and_clear();
        println!("object bytes: {copied} blob(s) in {}, verified where they were already", shared.display());
    }
    println!("\nNow, in the [[region]] of {} in {}, set:", region.name, args.config.display());
    println!("  metadata = \"{}\"", without_password(&args.to));
    println!("  blobs = \"{}\"", moved.blobs.as_deref().unwrap_or_default());
    println!("and start its front-ends: tern server --config {} --region {}", args.config.display(), region.name);
    Ok(())
}

/// The region as it will be configured: `--to`, and `--blobs` or the
/// directory its bytes are in now (a front-end on shared metadata needs one).
fn moved_region(region: &RegionConfig, region_dir: &Path, args: &MigrateArgs) -> anyhow::Result<RegionConfig> {
    let mut moved = region.clone();
    moved.metadata = Some(args.to.clone());
    let here = || std::path::absolute(region_dir.join("blobs")).map(|dir| format!("file://{}", dir.display()));
    moved.blobs = Some(if let Some(url) = &args.blobs { url.clone() } else { here()? });
    moved.metadata_location()?;
    if moved.blobs.as_deref().is_some_and(|b| !b.starts_with("file://")) {
        bail!("--blobs copies to a directory (file:///…); to move bytes into S3, copy blobs/ there yourself");
    }
    moved.blob_location()?;
    Ok(moved)
}

fn report(what: &str, tables: &[TableSummary]) {
    println!("metadata: {what}");
    for table in tables {
        println!("  {:<18} {:>8} rows  sha256 {}", table.table, table.rows, &table.sha256[..16]);
    }
}

fn progress_bar(unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit}");
    bar.set_style(ProgressStyle::with_template(&template).expect("the template is valid"));
    bar
}

/// `url` as it may be written down: without a password (`PGPASSWORD`
/// supplies it), whether in the user part or as a `password=` parameter.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The host follows the last `@`: whatever precedes it is credentials,
    // however the password is written.
    let (user, rest) = match rest.rsplit_once('@') {
        Some((credentials, rest)) => (credentials.split_once(':').map_or(credentials, |(user, _)| user), rest),
        None => ("", rest),
    };
    let (place, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    let kept: Vec<&str> =
        query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.starts_with("password=")).collect();
    let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
    let user = if user.is_empty() { String::new() } else { format!("{user}@") };
    format!("{scheme}://{user}{place}{query}")
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_are_never_printed() {
        assert_eq!(without_password("postgres://tern:s3cret@db:5432/x"), "postgres://tern@db:5432/x");
        assert_eq!(without_password("postgres://tern@db/x"), "postgres://tern@db/x");
        assert_eq!(without_password("postgres://db/x"), "postgres://db/x");
        assert_eq!(without_password("postgres://tern:p@ss@db/x"), "postgres://tern@db/x");
        assert_eq!(without_password("postgres://tern:pa/ss@db/x"), "postgres://tern@db/x");
        assert_eq!(
            without_password("postgres://tern@db/x?sslmode=require&password=s3cret&host=/run"),
            "postgres://tern@db/x?sslmode=require&host=/run"
        );
    }
}
