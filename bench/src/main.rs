//! Tern's benchmark harness, on aws-sdk-s3/kms. Every suite measures things
//! side by side in one run, rounds interleaved so a noisy box affects them
//! alike, and prints one JSON line per figure with its ratio to a baseline:
//!
//! - `peers`: PUT/GET throughput of Tern against other S3 servers
//!   (`--target label=URL[,ACCESS_KEY,SECRET_KEY]`), ratio to Tern.
//! - `sse`: SSE-S3, SSE-KMS, SSE-KMS with a bucket key and SSE-C on one Tern,
//!   ratio to SSE-S3; plus KMS calls per 1,000 PUTs with and without bucket keys.
//! - `kms`: `GenerateDataKey` and `Decrypt` operations per second of Tern's KMS,
//!   and of moto's (`--moto URL`) as the baseline the target names.
//! - `replication`: lag from PUT acknowledged to replica readable at a steady
//!   50 PUT/s of 1 MiB, and replicated throughput of 64 MiB objects against
//!   plain PUT throughput, on a two-region Tern.
//! - `backlog`: memory while replication drains a backlog of 100,000 small
//!   objects (RSS growth of the process from the start of the drain).
//! - `cse`: client-side encryption (`tern-cse`) PUT/GET of 64 MiB objects
//!   against plain PUT/GET of the same bytes, ratio to plain.
//! - `policy`: PUT/GET on a bucket with a bucket policy against one
//!   without, ratio to the bucket without.
//! - `tls`: PUT/GET throughput over HTTPS (`tern up --tls`) against plain
//!   HTTP on the same build, ratio to HTTP.
//! - `shared`: a region on PostgreSQL (one and two front-ends) against the
//!   embedded default, the outbox drained by two front-ends against one, and
//!   PostgreSQL transactions per operation (run under `scripts/with-postgres`).
//! - `audit`: KMS calls per second with the audit trail on against off
//!   (batched `GenerateDataKey`/`Decrypt`, fsynced `DescribeKey`), ratio to off.

// Statistics over request counts and byte totals far below 2^52.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod audit;
mod cse;
mod kms;
mod measure;
mod objects;
mod peers;
mod policy;
mod replication;
mod shared;
mod sse;
mod tls;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum Suite {
    Peers,
    Sse,
    Kms,
    Replication,
    Backlog,
    Cse,
    Tls,
    Policy,
    Audit,
    Shared,
}

#[derive(Parser)]
#[command(about = "Benchmarks of Tern, reported as ratios measured in one run")]
struct Args {
    #[arg(long, value_enum, default_value = "peers")]
    suite: Suite,
    /// A peer to compare (suite `peers`): `label=URL[,ACCESS_KEY,SECRET_KEY]`; repeatable.
    #[arg(long)]
    target: Vec<String>,
    /// moto's server URL (suite `kms`), the baseline KMS.
    #[arg(long)]
    moto: Option<String>,
    /// The tern binary to start.
    #[arg(long, default_value = "target/release/tern")]
    tern_bin: PathBuf,
    /// Workloads: `4k`, `1m`, `64m` (comma-separated).
    #[arg(long, default_value = "4k,1m,64m", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Interleaved rounds; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Scales every request count (0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// CPU-bound threads running beside the servers throughout (suite
    /// `peers`): the same contention for every target.
    #[arg(long, default_value_t = 0)]
    neighbours: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let regions: &[&str] = match args.suite {
        Suite::Replication | Suite::Backlog => &["us-east-1", "eu-west-1"],
        _ => &["us-east-1"],
    };
    // Kept alive for the whole run; dropping it stops the server.
    let tern = tern_testkit::Deployment::start(&args.tern_bin, regions).await?;
    let result = match args.suite {
        Suite::Peers => peers::run(&args, &tern).await,
        Suite::Sse => sse::run(&args, &tern).await,
        Suite::Kms => kms::run(&args, &tern).await,
        Suite::Replication => replication::run(&args, &tern).await,
        Suite::Backlog => replication::backlog(&args, &tern).await,
        Suite::Cse => cse::run(&args, &tern).await,
        Suite::Tls => tls::run(&args, &tern).await,
        Suite::Policy => policy::run(&args, &tern).await,
        Suite::Audit => audit::run(&args, &tern).await,
        Suite::Shared => shared::run(&args, &tern).await,
    };
    if result.is_err() {
        let log = tern.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("tern's log ends:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    result
}
