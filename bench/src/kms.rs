//! KMS operations per second: `GenerateDataKey` and `Decrypt` at 16 in flight,
//! against Tern's KMS and, with `--moto URL`, moto's (the baseline).

use aws_sdk_kms::Client;
use aws_sdk_kms::types::DataKeySpec;
use serde_json::json;

use crate::Args;
use crate::measure::{Measure, measure, report};

pub const CONCURRENCY: usize = 16;
pub const REQUESTS: f64 = 4000.0;

fn kms_client(url: &str, access_key: &str, secret_key: &str) -> Client {
    let credentials = aws_sdk_kms::config::Credentials::new(access_key, secret_key, None, None, "bench");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

/// One round on one KMS: (`GenerateDataKey`, `Decrypt`).
pub async fn round(kms: &Client, requests: usize) -> anyhow::Result<(Measure, Measure)> {
    let key = kms.create_key().send().await?.key_metadata.map(|m| m.key_id).unwrap_or_default();
    let generate = measure(requests, CONCURRENCY, 0, |_| {
        let request = kms.generate_data_key().key_id(&key).key_spec(DataKeySpec::Aes256);
        async move {
            request.send().await?;
            Ok(())
        }
    })
    .await?;
    let blob = kms.generate_data_key().key_id(&key).key_spec(DataKeySpec::Aes256).send().await?.ciphertext_blob;
    let blob = blob.ok_or_else(|| anyhow::anyhow!("no ciphertext"))?;
    let decrypt = measure(requests, CONCURRENCY, 0, |_| {
        let request = kms.decrypt().ciphertext_blob(blob.clone());
        async move {
            request.send().await?;
            Ok(())
        }
    })
    .await?;
    Ok((generate, decrypt))
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    if let Some(url) = &args.moto {
        targets.push(("moto".to_owned(), kms_client(url, "testing", "testing")));
    }
    targets.push(("tern".to_owned(), tern.kms("us-east-1")));
    let requests = ((REQUESTS * args.scale) as usize).max(CONCURRENCY);
    let mut generate: Vec<(String, Vec<Measure>)> = targets.iter().map(|(l, _)| (l.clone(), vec![])).collect();
    let mut decrypt = generate.clone();
    for _ in 0..args.rounds {
        for (i, (_, kms)) in targets.iter().enumerate() {
            let (g, d) = round(kms, requests).await?;
            generate[i].1.push(g);
            decrypt[i].1.push(d);
        }
    }
    for (op, series) in [("GenerateDataKey", &generate), ("Decrypt", &decrypt)] {
        report(&json!({"op": op, "concurrency": CONCURRENCY, "requests": requests}), series, |m| m.ops_per_sec);
    }
    Ok(())
}
