//! `tern`: run a deployment of regions, or one region of it.

mod audit_cli;
mod cse_cli;
mod demo;
mod doctor;
mod replication_cli;
mod store_cli;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tern_core::DeploymentConfig;
use tern_server::{Origin, RootCredentials, RunningRegion, start_region};
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "tern", version, about = "Self-hosted multi-region S3 with KMS and cross-region replication")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Stop when standard input closes: test harnesses pass a pipe so servers
    /// never outlive the process that started them.
    #[arg(long, global = true, hide = true)]
    exit_on_stdin_close: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run every region of a deployment in this process (default: two regions on loopback).
    Up {
        /// Deployment file (TOML); without it, us-east-1 on :9100 and eu-west-1 on :9101.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve every region over HTTPS only, with a local CA and certificates
        /// made once in the data directory's tls/ (regions authenticate each other
        /// with a peer certificate too).
        #[arg(long)]
        tls: bool,
    },
    /// Run one region of a deployment; the others are its peers over HTTP.
    Server {
        #[arg(long)]
        config: PathBuf,
        /// Which region of the file this process is.
        #[arg(long)]
        region: String,
        /// Listen here instead of the region's `listen`: one of several
        /// front-ends of a region whose stores they share.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// As for `up`: HTTPS with the local CA under the data directory's
        /// tls/ (made by the first region that starts).
        #[arg(long)]
        tls: bool,
    },
    /// See and re-drive a bucket's cross-region replication.
    Replication {
        #[command(subcommand)]
        command: replication_cli::ReplicationCommand,
    },
    /// Client-side encryption in the formats of AWS's S3 Encryption Clients.
    Cse {
        #[command(subcommand)]
        command: cse_cli::CseCommand,
    },
    /// Who used which key, when, from where: the regions' audit trails
    /// (`tern audit verify` checks they are unchanged).
    Audit(audit_cli::AuditArgs),
    /// Build the three encryption models of cross-region replication on a
    /// running deployment, replicate one object each, and show in a table
    /// how each region holds it and who can read it.
    Demo(demo::DemoArgs),
    /// Check a deployment: its file, data directory, certificates, ports,
    /// regions and their clocks, databases, and failed replication; one
    /// line per finding, exit 1 if any failed.
    Doctor(doctor::DoctorArgs),
    /// Move a region's stores: `tern store migrate` takes an embedded region
    /// to PostgreSQL (and its bytes to a shared directory).
    Store {
        #[command(subcommand)]
        command: store_cli::StoreCommand,
    },
}

/// Servers log progress; client commands only trouble, on stderr, so their
/// standard output stays theirs (`--json`). A server's lines (one per
/// request) go out through a writer thread in batches, never a write per
/// line on the request's own thread; the guard flushes them at exit.
fn init_logging(command: &Command) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let server = matches!(command, Command::Up { .. } | Command::Server { .. });
    // s3s logs every error answer at ERROR, a client's mistakes included;
    // Tern logs its own failures itself, so s3s is heard only when asked for.
    let default = if server { "info,s3s=off,sqlx=warn" } else { "warn,s3s=off" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // Colour only for a person at a terminal, never into files or pipes.
    if server {
        let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
        logs.with_ansi(std::io::stdout().is_terminal()).with_writer(writer).init();
        Some(guard)
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).init();
        None
    }
}

fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _flushed_at_exit = init_logging(&cli.command);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        let stdin_watch = cli.exit_on_stdin_close;
        match cli.command {
            Command::Up { config, tls } => {
                let mut deployment = match config {
                    Some(path) => DeploymentConfig::load(&path)?,
                    None => DeploymentConfig::default(),
                };
                if tls {
                    tern_server::local_ca::provision(&mut deployment)?;
                }
                let names: Vec<String> = deployment.regions.iter().map(|r| r.name.clone()).collect();
                run(&deployment, &names, stdin_watch).await
            }
            Command::Server { config, region, listen, tls } => {
                let mut deployment = DeploymentConfig::load(&config)?;
                if let Some(address) = listen {
                    deployment.listen_at(&region, address)?;
                }
                if tls {
                    tern_server::local_ca::provision(&mut deployment)?;
                }
                run(&deployment, &[region], stdin_watch).await
            }
            Command::Replication { command } => replication_cli::run(command).await,
            Command::Cse { command } => cse_cli::run(command).await,
            Command::Audit(args) => audit_cli::run(args),
            Command::Demo(args) => demo::run(args).await,
            Command::Doctor(args) => {
                if !doctor::run(args).await? {
                    std::process::exit(1);
                }
                Ok(())
            }
            Command::Store { command } => store_cli::run(command).await,
        }
    });
    // Regions have drained by now; don't wait on the blocking stdin reader.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn run(deployment: &DeploymentConfig, regions: &[String], stdin_watch: bool) -> anyhow::Result<()> {
    raise_file_limit(deployment, regions.len());
    let (root, origin) = RootCredentials::load_or_create(&deployment.data_dir)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut running: Vec<RunningRegion> = Vec::new();
    let console = tern_console::factory();
    for name in regions {
        running.push(start_region(deployment, name, &root, stop_rx.clone(), Some(&*console)).await?);
    }
    announce(deployment, &running, (&root, &origin));
    wait_for_stop_signal(stdin_watch).await?;
    println!("stopping: finishing in-flight requests…");
    stop_tx.send(true).ok();
    for region in running {
        region.join().await?;
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: every connection
/// is a file, and the soft default (often 1024) is far below what the
/// regions' connection bounds allow. Warns if even the hard limit is lower.
fn raise_file_limit(deployment: &DeploymentConfig, regions: usize) {
    let wanted = u64::try_from(deployment.limits.max_connections.saturating_mul(regions)).unwrap_or(u64::MAX);
    match rlimit::increase_nofile_limit(u64::MAX) {
        // Blobs, the database and peers need files too.
        Ok(limit) if limit < wanted.saturating_add(256) => tracing::warn!(
            limit,
            wanted,
            "the open-file limit is below the regions' connection bounds; connections will wait for files"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn announce(deployment: &DeploymentConfig, running: &[RunningRegion], (root, origin): (&RootCredentials, &Origin)) {
    let url = |region: &RunningRegion| {
        let tls = deployment.region(&region.name).is_some_and(tern_core::RegionConfig::serves_tls);
        format!("{}://{}", if tls { "https" } else { "http" }, region.local_addr)
    };
    for region in running {
        println!("region {:<12} serving on {}", region.name, url(region));
    }
    if let Some(trust) = &deployment.tls {
        let ca = std::path::absolute(&trust.ca).unwrap_or_else(|_| trust.ca.clone());
        println!("\nClients trust the deployment's CA with:\nexport AWS_CA_BUNDLE={}", ca.display());
    }
    match origin {
        Origin::Generated(path) => {
            println!("\nRoot credentials were generated and saved to {} (mode 0600). Paste these:", path.display());
            println!("export AWS_ACCESS_KEY_ID={}", root.access_key_id);
            println!("export AWS_SECRET_ACCESS_KEY={}", root.secret_access_key.as_str());
        }
        Origin::Existing(path) => println!("root credentials: {} (access key {})", path.display(), root.access_key_id),
        Origin::Environment => {
            println!("root credentials: from TERN_ROOT_ACCESS_KEY_ID / TERN_ROOT_SECRET_ACCESS_KEY");
        }
    }
    if let Some(first) = running.first() {
        println!("\ntry: aws --endpoint-url {} --region {} s3 mb s3://my-bucket", url(first), first.name);
    }
}

async fn wait_for_stop_signal(stdin_watch: bool) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    let stdin_closed = async {
        if stdin_watch {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
        () = stdin_closed => {}
    }
    Ok(())
}
