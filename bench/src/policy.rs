//! What a bucket policy costs: 4 KiB PUT/GET on a bucket with a policy of
//! several statements and conditions against one without, on one Tern,
//! ratio to the bucket without.

use serde_json::json;

use crate::Args;
use crate::measure::{Measure, WORKLOADS, report, s3_client};
use crate::objects::{Encryption, put_get};

/// A policy as deployments write them: a TLS-only deny, an encryption
/// requirement, a grant to one user, a deny on a prefix by address.
fn policy(bucket: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*"),
         "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms:dsse"}}},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": format!("arn:aws:s3:::{bucket}/*")},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/private/*"),
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
    ]})
    .to_string()
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let s3 = s3_client(&tern.endpoint("us-east-1"), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let labels = ["no-policy", "policy"];
    for w in WORKLOADS.iter().filter(|w| args.workloads.iter().any(|n| n == w.name)) {
        let requests = w.requests(args.scale);
        let mut puts: Vec<(String, Vec<Measure>)> = labels.iter().map(|l| ((*l).to_owned(), vec![])).collect();
        let mut gets = puts.clone();
        for round in 0..args.rounds {
            for i in (0..labels.len()).map(|i| (i + round) % labels.len()) {
                let bucket = format!("{}-{}-{round}", labels[i], w.name);
                s3.create_bucket().bucket(&bucket).send().await?;
                if labels[i] == "policy" {
                    s3.put_bucket_policy().bucket(&bucket).policy(policy(&bucket)).send().await?;
                }
                let (put, get) = put_get(&s3, &bucket, w, requests, &Encryption::Default).await?;
                puts[i].1.push(put);
                gets[i].1.push(get);
            }
        }
        for (op, series) in [("PUT", &puts), ("GET", &gets)] {
            let fields = json!({"workload": w.name, "op": op, "size": w.size, "concurrency": w.concurrency, "requests": requests});
            report(&fields, series, |m| m.ops_per_sec);
        }
    }
    Ok(())
}
