//! The price of each encryption mode on one Tern: PUT/GET throughput of
//! SSE-KMS, SSE-KMS with a bucket key, and SSE-C against SSE-S3; and how
//! many KMS calls S3 makes per 1,000 PUTs with and without bucket keys.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde_json::json;

use crate::Args;
use crate::measure::{Measure, WORKLOADS, Workload, report, s3_client};
use crate::objects::{Encryption, put_get};

struct Mode {
    label: &'static str,
    encryption: Encryption,
    /// The bucket's default encryption: aws:kms with this key and a bucket key.
    bucket_key: Option<String>,
}

fn modes(key: &str) -> Vec<Mode> {
    vec![
        Mode { label: "sse-s3", encryption: Encryption::Default, bucket_key: None },
        Mode { label: "sse-kms", encryption: Encryption::Kms(key.to_owned()), bucket_key: None },
        Mode { label: "sse-kms-bucket-key", encryption: Encryption::Default, bucket_key: Some(key.to_owned()) },
        Mode { label: "sse-c", encryption: Encryption::Customer, bucket_key: None },
    ]
}

async fn bucket_for(s3: &Client, name: &str, mode: &Mode) -> anyhow::Result<()> {
    s3.create_bucket().bucket(name).send().await?;
    if let Some(key) = &mode.bucket_key {
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(key)
            .build()?;
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(true);
        let config = ServerSideEncryptionConfiguration::builder().rules(rule.build()).build()?;
        s3.put_bucket_encryption().bucket(name).server_side_encryption_configuration(config).send().await?;
    }
    Ok(())
}

/// KMS calls S3 has made so far, from the region's metrics.
async fn kms_calls_by_s3(endpoint: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{endpoint}/_tern/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("tern_kms_cryptographic_calls_total{") && l.contains(r#"caller="s3""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

async fn kms_calls_per_1000_puts(s3: &Client, endpoint: &str, mode: &Mode) -> anyhow::Result<()> {
    let bucket = format!("calls-{}", mode.label);
    bucket_for(s3, &bucket, mode).await?;
    let w = Workload { name: "4k", size: 4096, concurrency: 16, requests: 1000 };
    let before = kms_calls_by_s3(endpoint).await?;
    put_get(s3, &bucket, &w, w.requests, &mode.encryption).await?;
    let calls = kms_calls_by_s3(endpoint).await? - before;
    println!("{}", json!({"metric": "kms_calls_per_1000_puts_and_1000_gets", "target": mode.label, "calls": calls}));
    Ok(())
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let endpoint = tern.endpoint("us-east-1");
    let s3 = s3_client(&endpoint, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let key = tern.kms("us-east-1").create_key().send().await?.key_metadata.and_then(|m| m.arn).unwrap_or_default();
    let modes = modes(&key);
    for w in WORKLOADS.iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let requests = w.requests(args.scale);
        let mut puts: Vec<(String, Vec<Measure>)> = modes.iter().map(|m| (m.label.to_owned(), vec![])).collect();
        let mut gets = puts.clone();
        for round in 0..args.rounds {
            // Each round starts with a different mode: a big write leaves
            // dirty pages that slow whoever comes next.
            for i in (0..modes.len()).map(|i| (i + round) % modes.len()) {
                let mode = &modes[i];
                let bucket = format!("{}-{}-{round}", mode.label, w.name);
                bucket_for(&s3, &bucket, mode).await?;
                let (put, get) = put_get(&s3, &bucket, w, requests, &mode.encryption).await?;
                puts[i].1.push(put);
                gets[i].1.push(get);
            }
        }
        for (op, series) in [("PUT", &puts), ("GET", &gets)] {
            let fields = json!({"workload": w.name, "op": op, "size": w.size, "concurrency": w.concurrency, "requests": requests});
            report(&fields, series, |m| m.mb_per_sec);
        }
    }
    for mode in modes.iter().filter(|m| m.label.starts_with("sse-kms")) {
        kms_calls_per_1000_puts(&s3, &endpoint, mode).await?;
    }
    Ok(())
}
