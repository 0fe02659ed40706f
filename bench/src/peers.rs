//! Tern against other S3 servers: PUT/GET throughput per workload, and the
//! CPU each server process spends per operation when its pid is known;
//! optionally with CPU-bound neighbours on the same cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use aws_sdk_s3::Client;
use serde_json::json;

use crate::Args;
use crate::measure::{Measure, WORKLOADS, cpu_ms, report, s3_client};
use crate::objects::{Encryption, get_all, put_all};

/// One server under test: its label, a client, and its process if known.
pub struct Target {
    label: String,
    s3: Client,
    pid: Option<u32>,
}

impl Target {
    pub fn new(label: &str, s3: Client, pid: Option<u32>) -> Self {
        Self { label: label.to_owned(), s3, pid }
    }
}

fn parse_target(spec: &str) -> anyhow::Result<Target> {
    let (label, rest) = spec.split_once('=').context("--target is label=URL[,KEY,SECRET[,PID]]")?;
    let mut parts = rest.split(',');
    let url = parts.next().context("missing URL")?;
    let access = parts.next().map_or_else(|| std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(), str::to_owned);
    let secret = parts.next().map_or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(), str::to_owned);
    let pid = parts.next().map(str::parse).transpose().context("PID")?;
    Ok(Target { label: label.to_owned(), s3: s3_client(url, &access, &secret), pid })
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let mut targets = vec![Target {
        label: "tern".to_owned(),
        s3: s3_client(&tern.endpoint("us-east-1"), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY),
        pid: tern.pid(),
    }];
    for spec in &args.target {
        targets.push(parse_target(spec)?);
    }
    let _neighbours = Neighbours::start(args.neighbours);
    compare(args, &targets).await
}

/// Threads that keep a core busy (SHA-256 over a buffer) until dropped:
/// the "CPU-bound neighbour" every target shares alike.
struct Neighbours {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Neighbours {
    fn start(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut block = vec![0u8; 64 << 10];
                    while !stop.load(Ordering::Relaxed) {
                        let digest = <md5::Md5 as md5::Digest>::digest(&block);
                        block[..16].copy_from_slice(&digest);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Neighbours {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs `phase` and records the CPU the target's process spent on it per operation.
async fn with_cpu<F: std::future::Future<Output = anyhow::Result<Measure>>>(
    pid: Option<u32>,
    requests: usize,
    phase: F,
) -> anyhow::Result<Measure> {
    let before = pid.and_then(cpu_ms);
    let mut measured = phase.await?;
    let after = pid.and_then(cpu_ms);
    measured.server_cpu_ms = before.zip(after).map(|(b, a)| (a - b) / requests as f64);
    Ok(measured)
}

/// PUT/GET throughput of each target per workload, rounds interleaved;
/// ratios to the first target.
pub async fn compare(args: &Args, targets: &[Target]) -> anyhow::Result<()> {
    for w in WORKLOADS.iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let requests = w.requests(args.scale);
        let mut puts: Vec<(String, Vec<Measure>)> = targets.iter().map(|t| (t.label.clone(), vec![])).collect();
        let mut gets = puts.clone();
        for round in 0..args.rounds {
            // Each round starts with a different target: a big write leaves
            // dirty pages that slow whoever comes next.
            for i in (0..targets.len()).map(|i| (i + round) % targets.len()) {
                let Target { label, s3, pid } = &targets[i];
                let bucket = format!("bench-{}-{round}", w.name);
                s3.create_bucket().bucket(&bucket).send().await.with_context(|| format!("{label}: create bucket"))?;
                let put = with_cpu(*pid, requests, put_all(s3, &bucket, w, requests, &Encryption::Default)).await?;
                let get = with_cpu(*pid, requests, get_all(s3, &bucket, w, requests, &Encryption::Default)).await?;
                puts[i].1.push(put);
                gets[i].1.push(get);
            }
        }
        for (op, series) in [("PUT", &puts), ("GET", &gets)] {
            let fields = json!({"workload": w.name, "op": op, "size": w.size, "concurrency": w.concurrency,
                "requests": requests, "neighbours": args.neighbours});
            report(&fields, series, |m| m.mb_per_sec);
        }
    }
    Ok(())
}
