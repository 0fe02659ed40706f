//! What the audit trail costs: KMS calls per second on a Tern with its
//! audit trail against one without, in one run, ratio to the one without.
//! `GenerateDataKey` and `Decrypt` are batched; `DescribeKey`, a management
//! call, waits for its record's fsync (shared by the calls in flight).

use aws_sdk_kms::Client;
use serde_json::json;

use crate::Args;
use crate::kms::{CONCURRENCY, REQUESTS, round};
use crate::measure::{Measure, measure, report};

async fn describe(kms: &Client, requests: usize) -> anyhow::Result<Measure> {
    let key = kms.create_key().send().await?.key_metadata.map(|m| m.key_id).unwrap_or_default();
    measure(requests, CONCURRENCY, 0, |_| {
        let request = kms.describe_key().key_id(&key);
        async move {
            request.send().await?;
            Ok(())
        }
    })
    .await
}

pub async fn run(args: &Args, audited: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let unaudited =
        tern_testkit::Deployment::start_with(&args.tern_bin, &["us-east-1"], "[audit]\nenabled = false").await?;
    let targets = [("audit-off", unaudited.kms("us-east-1")), ("audit-on", audited.kms("us-east-1"))];
    let requests = ((REQUESTS * args.scale) as usize).max(CONCURRENCY);
    let empty = || -> Vec<(String, Vec<Measure>)> { targets.iter().map(|(l, _)| ((*l).to_owned(), vec![])).collect() };
    let (mut generate, mut decrypt, mut described) = (empty(), empty(), empty());
    for r in 0..args.rounds {
        // Alternate which goes first, so neither always meets a warmer machine.
        for i in (0..targets.len()).map(|i| (i + r) % targets.len()) {
            let kms = &targets[i].1;
            let (g, d) = round(kms, requests).await?;
            generate[i].1.push(g);
            decrypt[i].1.push(d);
            described[i].1.push(describe(kms, requests).await?);
        }
    }
    for (op, series) in [("GenerateDataKey", &generate), ("Decrypt", &decrypt), ("DescribeKey", &described)] {
        report(&json!({"op": op, "concurrency": CONCURRENCY, "requests": requests}), series, |m| m.ops_per_sec);
    }
    Ok(())
}
