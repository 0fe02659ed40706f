//! Timing many requests at a fixed concurrency, and reporting medians.

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt as _;

/// One measured phase.
#[derive(Clone, Copy)]
pub struct Measure {
    pub ops_per_sec: f64,
    pub mb_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU time the server process spent per operation, when known.
    pub server_cpu_ms: Option<f64>,
}

/// CPU time (user + system) process `pid` has used so far, in milliseconds.
#[must_use]
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime 14 and stime 15 (in clock ticks, 100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

pub struct Workload {
    pub name: &'static str,
    pub size: usize,
    pub concurrency: usize,
    pub requests: usize,
}

pub const WORKLOADS: [Workload; 3] = [
    Workload { name: "4k", size: 4 << 10, concurrency: 16, requests: 4000 },
    Workload { name: "1m", size: 1 << 20, concurrency: 8, requests: 400 },
    Workload { name: "64m", size: 64 << 20, concurrency: 2, requests: 16 },
];

impl Workload {
    /// The request count after `--scale`, never below the concurrency.
    pub fn requests(&self, scale: f64) -> usize {
        ((self.requests as f64 * scale).ceil() as usize).max(self.concurrency)
    }

    pub fn body(&self) -> bytes::Bytes {
        bytes::Bytes::from((0..self.size).map(|i| (i % 251) as u8).collect::<Vec<_>>())
    }
}

/// An S3 client as a user would configure it against `url` (us-east-1).
pub fn s3_client(url: &str, access_key: &str, secret_key: &str) -> Client {
    s3_client_in("us-east-1", url, access_key, secret_key)
}

/// An S3 client for the endpoint of `region`.
pub fn s3_client_in(region: &str, url: &str, access_key: &str, secret_key: &str) -> Client {
    let credentials = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "bench");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_owned()))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .force_path_style(true);
    Client::from_conf(without_flexible_checksums(config).build())
}

/// Flexible checksums cost client CPU on the same two cores; leave them to the server's MD5.
pub fn without_flexible_checksums(config: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
    config
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs `requests` operations with `concurrency` in flight and measures them.
pub async fn measure<F, Fut>(requests: usize, concurrency: usize, size: usize, op: F) -> anyhow::Result<Measure>
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
        server_cpu_ms: None,
    })
}

fn median(mut values: Vec<Measure>, key: fn(&Measure) -> f64) -> f64 {
    values.sort_by(|a, b| key(a).total_cmp(&key(b)));
    key(&values[values.len() / 2])
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// Prints one JSON line per series: medians over rounds, and the ratio of
/// its throughput (`key`) to the first series'.
pub fn report(fields: &serde_json::Value, series: &[(String, Vec<Measure>)], key: fn(&Measure) -> f64) {
    let base = median(series[0].1.clone(), key);
    for (label, rounds) in series {
        let mut line = fields.clone();
        let value = median(rounds.clone(), key);
        line["target"] = label.clone().into();
        line["rounds"] = rounds.len().into();
        line["ops_per_sec"] = round(median(rounds.clone(), |m| m.ops_per_sec), 1).into();
        line["mb_per_sec"] = round(median(rounds.clone(), |m| m.mb_per_sec), 1).into();
        line["p50_ms"] = round(median(rounds.clone(), |m| m.p50_ms), 2).into();
        line["p99_ms"] = round(median(rounds.clone(), |m| m.p99_ms), 2).into();
        if rounds.iter().all(|m| m.server_cpu_ms.is_some()) {
            line["server_cpu_ms_per_op"] = round(median(rounds.clone(), |m| m.server_cpu_ms.unwrap_or(0.0)), 2).into();
        }
        line[format!("ratio_to_{}", series[0].0)] = round(value / base, 2).into();
        println!("{line}");
    }
}
