//! Tern against other S3 servers: PUT/GET throughput per workload.

use anyhow::Context as _;
use aws_sdk_s3::Client;
use serde_json::json;

use crate::Args;
use crate::measure::{Measure, WORKLOADS, report, s3_client};
use crate::objects::{Encryption, put_get};

fn parse_target(spec: &str) -> anyhow::Result<(String, Client)> {
    let (label, rest) = spec.split_once('=').context("--target is label=URL[,KEY,SECRET]")?;
    let mut parts = rest.split(',');
    let url = parts.next().context("missing URL")?;
    let access = parts.next().map_or_else(|| std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(), str::to_owned);
    let secret = parts.next().map_or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(), str::to_owned);
    Ok((label.to_owned(), s3_client(url, &access, &secret)))
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let mut targets = vec![(
        "tern".to_owned(),
        s3_client(&tern.endpoint("us-east-1"), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY),
    )];
    for spec in &args.target {
        targets.push(parse_target(spec)?);
    }
    compare(args, &targets).await
}

/// PUT/GET throughput of each target per workload, rounds interleaved;
/// ratios to the first target.
pub async fn compare(args: &Args, targets: &[(String, Client)]) -> anyhow::Result<()> {
    for w in WORKLOADS.iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let requests = w.requests(args.scale);
        let mut puts: Vec<(String, Vec<Measure>)> = targets.iter().map(|(l, _)| (l.clone(), vec![])).collect();
        let mut gets = puts.clone();
        for round in 0..args.rounds {
            // Each round starts with a different target: a big write leaves
            // dirty pages that slow whoever comes next.
            for i in (0..targets.len()).map(|i| (i + round) % targets.len()) {
                let (label, s3) = &targets[i];
                let bucket = format!("bench-{}-{round}", w.name);
                s3.create_bucket().bucket(&bucket).send().await.with_context(|| format!("{label}: create bucket"))?;
                let (put, get) = put_get(s3, &bucket, w, requests, &Encryption::Default).await?;
                puts[i].1.push(put);
                gets[i].1.push(get);
            }
        }
        for (op, series) in [("PUT", &puts), ("GET", &gets)] {
            let fields = json!({"workload": w.name, "op": op, "size": w.size, "concurrency": w.concurrency, "requests": requests});
            report(&fields, series, |m| m.mb_per_sec);
        }
    }
    Ok(())
}
