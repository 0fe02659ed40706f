//! Tern's benchmark harness: PUT/GET throughput and latency of S3 endpoints,
//! measured side by side in one run and reported as JSON with ratios.
//!
//! It starts `tern up` (one region) from `--tern-bin` as the first target;
//! each `--target label=URL[,ACCESS_KEY,SECRET_KEY]` adds a peer. Rounds are
//! interleaved across targets so a noisy box affects all of them alike, and
//! every figure carries its ratio to Tern's.

// Statistics over request counts and byte totals far below 2^52.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt as _;
use serde_json::json;

#[derive(Parser)]
#[command(about = "PUT/GET benchmarks of S3 endpoints, reported as ratios in one run")]
struct Args {
    /// A peer to compare: `label=URL[,ACCESS_KEY,SECRET_KEY]`; repeatable.
    #[arg(long)]
    target: Vec<String>,
    /// The tern binary to start when no target is given.
    #[arg(long, default_value = "target/release/tern")]
    tern_bin: PathBuf,
    /// Workloads: `4k`, `1m`, `64m` (comma-separated).
    #[arg(long, default_value = "4k,1m,64m", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Interleaved rounds per target; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Scales every workload's request count (0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

struct Target {
    label: String,
    client: Client,
}

struct Workload {
    name: &'static str,
    size: usize,
    concurrency: usize,
    requests: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload { name: "4k", size: 4 << 10, concurrency: 16, requests: 4000 },
    Workload { name: "1m", size: 1 << 20, concurrency: 8, requests: 400 },
    Workload { name: "64m", size: 64 << 20, concurrency: 2, requests: 16 },
];

/// One measured phase.
#[derive(Clone, Copy)]
struct Measure {
    ops_per_sec: f64,
    mb_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn client(url: &str, access_key: &str, secret_key: &str) -> Client {
    let credentials = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "bench");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .force_path_style(true)
        // Flexible checksums cost client CPU on the same two cores; leave them to the server's MD5.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

fn parse_target(spec: &str) -> anyhow::Result<Target> {
    let (label, rest) = spec.split_once('=').context("--target is label=URL[,KEY,SECRET]")?;
    let mut parts = rest.split(',');
    let url = parts.next().context("missing URL")?;
    let access = parts.next().map_or_else(|| std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(), str::to_owned);
    let secret = parts.next().map_or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(), str::to_owned);
    Ok(Target { label: label.to_owned(), client: client(url, &access, &secret) })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs `requests` operations with `concurrency` in flight and measures them.
async fn measure<F, Fut>(requests: usize, concurrency: usize, size: usize, op: F) -> anyhow::Result<Measure>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|i| {
            let fut = op(i);
            async move {
                let t = Instant::now();
                fut.await.map(|()| t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    Ok(Measure {
        ops_per_sec: requests as f64 / elapsed,
        mb_per_sec: (requests * size) as f64 / elapsed / 1e6,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

async fn run_round(
    target: &Target,
    w: &Workload,
    requests: usize,
    body: &Bytes,
    round: usize,
) -> anyhow::Result<(Measure, Measure)> {
    let bucket = format!("bench-{}-{round}", w.name);
    let s3 = &target.client;
    s3.create_bucket().bucket(&bucket).send().await.with_context(|| format!("{}: create bucket", target.label))?;
    let put = measure(requests, w.concurrency, w.size, |i| {
        let (s3, bucket, body) = (s3.clone(), bucket.clone(), body.clone());
        async move {
            s3.put_object().bucket(bucket).key(format!("o{i}")).body(ByteStream::from(body)).send().await?;
            Ok(())
        }
    })
    .await?;
    let get = measure(requests, w.concurrency, w.size, |i| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            let out = s3.get_object().bucket(bucket).key(format!("o{i}")).send().await?;
            let mut body = out.body;
            let mut n = 0;
            while let Some(chunk) = body.next().await {
                n += chunk?.len();
            }
            anyhow::ensure!(n == w.size, "short read: {n}");
            Ok(())
        }
    })
    .await?;
    Ok((put, get))
}

fn median(mut values: Vec<Measure>, key: fn(&Measure) -> f64) -> f64 {
    values.sort_by(|a, b| key(a).total_cmp(&key(b)));
    key(&values[values.len() / 2])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Kept alive for the whole run; dropping it stops the server.
    let tern = tern_testkit::Deployment::start(&args.tern_bin, &["us-east-1"]).await?;
    let mut targets = vec![Target {
        label: "tern".into(),
        client: client(&tern.endpoint("us-east-1"), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY),
    }];
    for spec in &args.target {
        targets.push(parse_target(spec)?);
    }
    for w in WORKLOADS.iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let requests = ((w.requests as f64 * args.scale).ceil() as usize).max(w.concurrency);
        let body = Bytes::from((0..w.size).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let mut results: Vec<(Vec<Measure>, Vec<Measure>)> = vec![(vec![], vec![]); targets.len()];
        for round in 0..args.rounds {
            for (target, result) in targets.iter().zip(results.iter_mut()) {
                let (put, get) = run_round(target, w, requests, &body, round).await?;
                result.0.push(put);
                result.1.push(get);
            }
        }
        for (op, pick) in [("PUT", 0), ("GET", 1)] {
            let baseline = |r: &(Vec<Measure>, Vec<Measure>)| {
                median(if pick == 0 { r.0.clone() } else { r.1.clone() }, |m| m.mb_per_sec)
            };
            let base = baseline(&results[0]);
            for (target, result) in targets.iter().zip(&results) {
                let series = if pick == 0 { result.0.clone() } else { result.1.clone() };
                let mb = median(series.clone(), |m| m.mb_per_sec);
                let line = json!({
                    "workload": w.name, "op": op, "target": target.label,
                    "size": w.size, "concurrency": w.concurrency, "requests": requests, "rounds": args.rounds,
                    "ops_per_sec": (median(series.clone(), |m| m.ops_per_sec) * 10.0).round() / 10.0,
                    "mb_per_sec": (mb * 10.0).round() / 10.0,
                    "p50_ms": (median(series.clone(), |m| m.p50_ms) * 100.0).round() / 100.0,
                    "p99_ms": (median(series, |m| m.p99_ms) * 100.0).round() / 100.0,
                    "ratio_to_tern": (mb / base * 100.0).round() / 100.0,
                });
                println!("{line}");
            }
        }
    }
    Ok(())
}
