//! Replication on a two-region Tern (us-east-1 → eu-west-1):
//!
//! - lag: 1 MiB objects PUT at a steady 50 per second; for each, the time
//!   from the PUT's acknowledgement to its replica being readable in the
//!   destination (HEAD of the same version id), p50 and p99;
//! - throughput: 64 MiB objects; plain PUT throughput (two in flight) into
//!   an unreplicated bucket, against the rate at which replication drains a
//!   backlog of the same objects (the backlog is built with a role that may
//!   not replicate yet, then granted and re-driven with the admin API's
//!   retry), same server, same run; for SSE-S3 objects, SSE-KMS objects
//!   re-encrypted under a regional destination key (model 2), and SSE-KMS
//!   objects under a multi-region key, which travel sealed (model 3).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    EncryptionConfiguration, ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
    ServerSideEncryption, SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
    VersioningConfiguration,
};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::json;

use crate::Args;
use crate::measure::{Workload, s3_client_in};

const SOURCE: &str = "us-east-1";
const DESTINATION: &str = "eu-west-1";

pub(crate) async fn versioned_bucket(s3: &Client, name: &str, region: &str) -> anyhow::Result<()> {
    let mut create = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        let location = aws_sdk_s3::types::BucketLocationConstraint::from(region);
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(location).build(),
        );
    }
    create.send().await?;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(name).versioning_configuration(enabled).send().await?;
    Ok(())
}

pub(crate) const READ_AND_REPLICATE: &str =
    r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt","kms:GenerateDataKey"]"#;

/// How the drained objects are encrypted: the source key (none: SSE-S3)
/// and the rule's `ReplicaKmsKeyID`.
struct Mode {
    label: &'static str,
    source_key: Option<String>,
    replica_key: Option<String>,
}

async fn modes(tern: &tern_testkit::Deployment) -> anyhow::Result<Vec<Mode>> {
    let arn = |m: Option<aws_sdk_kms::types::KeyMetadata>| m.and_then(|m| m.arn).unwrap_or_default();
    let regional = arn(tern.kms(SOURCE).create_key().send().await?.key_metadata);
    let replica = arn(tern.kms(DESTINATION).create_key().send().await?.key_metadata);
    let mrk = arn(tern.kms(SOURCE).create_key().multi_region(true).send().await?.key_metadata);
    tern.kms(SOURCE).replicate_key().key_id(&mrk).replica_region(DESTINATION).send().await?;
    let mrk_replica = mrk.replace(SOURCE, DESTINATION);
    Ok(vec![
        Mode { label: "sse-s3", source_key: None, replica_key: None },
        Mode { label: "sse-kms-regional", source_key: Some(regional), replica_key: Some(replica) },
        Mode { label: "sse-kms-mrk", source_key: Some(mrk), replica_key: Some(mrk_replica) },
    ])
}

/// A source bucket replicating everything to a fresh destination bucket
/// (SSE-KMS objects too, under `replica_key`, if given).
pub(crate) async fn replicated_pair(
    source: &Client,
    destination: &Client,
    name: &str,
    role: &str,
    replica_key: Option<&str>,
) -> anyhow::Result<()> {
    versioned_bucket(source, &format!("{name}-src"), SOURCE).await?;
    versioned_bucket(destination, &format!("{name}-dst"), DESTINATION).await?;
    let mut target = Destination::builder().bucket(format!("arn:aws:s3:::{name}-dst"));
    let mut builder = ReplicationRule::builder()
        .id("all")
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Disabled).build(),
        );
    if let Some(key) = replica_key {
        target = target.encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(key).build());
        let sse = SseKmsEncryptedObjects::builder().status(SseKmsEncryptedObjectsStatus::Enabled).build()?;
        builder = builder
            .source_selection_criteria(SourceSelectionCriteria::builder().sse_kms_encrypted_objects(sse).build());
    }
    let everything = builder.destination(target.build()?).build()?;
    let config = ReplicationConfiguration::builder().role(role).rules(everything).build()?;
    source.put_bucket_replication().bucket(format!("{name}-src")).replication_configuration(config).send().await?;
    Ok(())
}

/// Deletes every version in `bucket` (version deletes never replicate), so
/// rounds do not fill the disk.
async fn empty(s3: &Client, bucket: &str) -> anyhow::Result<()> {
    let versions = s3.list_object_versions().bucket(bucket).send().await?;
    for v in versions.versions() {
        s3.delete_object()
            .bucket(bucket)
            .key(v.key().unwrap_or_default())
            .set_version_id(v.version_id().map(str::to_owned))
            .send()
            .await?;
    }
    Ok(())
}

/// Waits until `version` of `key` is readable in `bucket`.
async fn replica_ready(s3: &Client, bucket: &str, key: &str, version: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_mins(2);
    while Instant::now() < deadline {
        if s3.head_object().bucket(bucket).key(key).version_id(version).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!("{key} never replicated")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| (d.as_secs_f64() * 100_000.0).round() / 100.0)
}

async fn lag(source: &Client, destination: &Client, objects: usize) -> anyhow::Result<Vec<Duration>> {
    let body = Workload { name: "1m", size: 1 << 20, concurrency: 1, requests: 1 }.body();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    let mut waits = Vec::new();
    for i in 0..objects {
        ticks.tick().await;
        let (source, destination, body) = (source.clone(), destination.clone(), body.clone());
        waits.push(tokio::spawn(async move {
            let key = format!("lag-{i}");
            let put = source.put_object().bucket("lag-src").key(&key).body(ByteStream::from(body)).send().await?;
            let acked = Instant::now();
            replica_ready(&destination, "lag-dst", &key, put.version_id().unwrap_or_default()).await?;
            Ok::<_, anyhow::Error>(acked.elapsed())
        }));
    }
    let mut lags = Vec::new();
    for wait in waits {
        lags.push(wait.await??);
    }
    lags.sort();
    Ok(lags)
}

/// PUTs `objects` 64 MiB objects (two in flight) into `bucket`, under
/// `key` with SSE-KMS if given; returns the seconds it took and each
/// object's (key, version id).
async fn put_64m(
    source: &Client,
    bucket: &str,
    objects: usize,
    key: Option<&str>,
) -> anyhow::Result<(f64, Vec<(String, String)>)> {
    let w = Workload { name: "64m", size: 64 << 20, concurrency: 2, requests: objects };
    let body = w.body();
    let started = Instant::now();
    let versions = futures::stream::iter(0..objects)
        .map(|i| {
            let (source, body) = (source.clone(), body.clone());
            let (bucket, sse_key) = (bucket.to_owned(), key.map(str::to_owned));
            async move {
                let name = format!("big-{i}");
                let mut put = source.put_object().bucket(bucket).key(&name).body(ByteStream::from(body));
                if let Some(sse_key) = sse_key {
                    put = put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(sse_key);
                }
                let put = put.send().await?;
                Ok::<_, anyhow::Error>((name, put.version_id().unwrap_or_default().to_owned()))
            }
        })
        .buffer_unordered(w.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    Ok((started.elapsed().as_secs_f64(), versions))
}

/// Seconds replication takes to drain a backlog of `objects` 64 MiB
/// objects in bucket pair `name` (its role `name` may not replicate until
/// granted here).
async fn drain(
    tern: &tern_testkit::Deployment,
    (source, destination): (&Client, &Client),
    name: &str,
    objects: usize,
    mode: &Mode,
) -> anyhow::Result<f64> {
    let role = tern.replication_role(SOURCE, name, r#"["s3:GetObjectVersionForReplication"]"#).await.context("role")?;
    replicated_pair(source, destination, name, &role, mode.replica_key.as_deref()).await.context("buckets")?;
    let source_bucket = format!("{name}-src");
    let (_, versions) = put_64m(source, &source_bucket, objects, mode.source_key.as_deref()).await.context("PUTs")?;
    let report_path = format!("/_tern/replication/{name}-src");
    loop {
        let report: serde_json::Value = serde_json::from_str(&tern.admin_call(SOURCE, "GET", &report_path).await?)?;
        if report["counts"]["FAILED"].as_u64() == Some(objects as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tern.allow_role(SOURCE, name, READ_AND_REPLICATE).await?;
    let started = Instant::now();
    tern.admin_call(SOURCE, "POST", &format!("/_tern/replication/{name}-src/retry")).await?;
    for (key, version) in &versions {
        replica_ready(destination, &format!("{name}-dst"), key, version).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    empty(source, &source_bucket).await?;
    empty(destination, &format!("{name}-dst")).await?;
    Ok(seconds)
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let client =
        |region: &str| s3_client_in(region, &tern.endpoint(region), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let (source, destination) = (client(SOURCE), client(DESTINATION));
    let role =
        tern.replication_role(SOURCE, "lag", READ_AND_REPLICATE).await.context("creating the replication role")?;
    replicated_pair(&source, &destination, "lag", &role, None).await.context("replicated buckets for lag")?;
    versioned_bucket(&source, "plain", SOURCE).await?;

    let objects = ((300.0 * args.scale) as usize).max(20);
    let lags = lag(&source, &destination, objects).await?;
    println!(
        "{}",
        json!({"metric": "replication_lag_ms", "rate_per_sec": 50, "size": 1 << 20, "objects": objects,
               "p50_ms": percentile(&lags, 0.5), "p99_ms": percentile(&lags, 0.99), "max_ms": percentile(&lags, 1.0)})
    );

    let objects = ((16.0 * args.scale) as usize).max(4);
    let bytes = (objects * (64 << 20)) as f64 / 1e6;
    let modes = modes(tern).await?;
    let mut plain = Vec::new();
    let mut drained: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..args.rounds {
        plain.push(bytes / put_64m(&source, "plain", objects, None).await.context("plain PUTs")?.0);
        empty(&source, "plain").await?;
        for (mode, rates) in modes.iter().zip(drained.iter_mut()) {
            let name = format!("{}-{round}", mode.label);
            let seconds = drain(tern, (&source, &destination), &name, objects, mode).await;
            rates.push(bytes / seconds.with_context(|| format!("draining {name}"))?);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let p = median(plain);
    println!(
        "{}",
        json!({"metric": "plain_put_64m", "objects": objects, "rounds": args.rounds, "mb_per_sec": (p * 10.0).round() / 10.0})
    );
    for (mode, rates) in modes.iter().zip(drained) {
        let r = median(rates);
        println!(
            "{}",
            json!({"metric": "replication_drain_64m", "mode": mode.label, "objects": objects, "rounds": args.rounds,
                   "mb_per_sec": (r * 10.0).round() / 10.0, "ratio_to_plain_put": (r / p * 100.0).round() / 100.0})
        );
    }
    Ok(())
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// RSS growth while replication drains a backlog of 100,000 small objects
/// (`--scale` scales the count): the backlog is built with a role that may
/// not replicate yet, then granted and re-driven.
pub async fn backlog(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let client =
        |region: &str| s3_client_in(region, &tern.endpoint(region), tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let (source, destination) = (client(SOURCE), client(DESTINATION));
    let pid = tern.pid().context("the deployment runs in one process")?;
    let objects = ((100_000.0 * args.scale) as usize).max(100);
    // Without any read permission each task fails at once, building the backlog quickly.
    let role = tern.replication_role(SOURCE, "backlog", r#"["s3:ListBucket"]"#).await?;
    replicated_pair(&source, &destination, "backlog", &role, None).await?;
    futures::stream::iter(0..objects)
        .map(|i| {
            let source = source.clone();
            async move {
                let body = ByteStream::from(format!("object {i}").into_bytes());
                source.put_object().bucket("backlog-src").key(format!("o{i:06}")).body(body).send().await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let report_path = "/_tern/replication/backlog-src";
    let counts = || async {
        let report: serde_json::Value = serde_json::from_str(&tern.admin_call(SOURCE, "GET", report_path).await?)?;
        Ok::<_, anyhow::Error>(report["counts"].clone())
    };
    while counts().await?["FAILED"].as_u64() != Some(objects as u64) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tern.allow_role(SOURCE, "backlog", READ_AND_REPLICATE).await?;
    let before = rss_kib(pid);
    let started = Instant::now();
    tern.admin_call(SOURCE, "POST", &format!("{report_path}/retry")).await?;
    let mut peak = before;
    while counts().await?["COMPLETED"].as_u64() != Some(objects as u64) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{}",
        json!({"metric": "replication_backlog_memory", "objects": objects, "drain_seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
               "rss_before_mib": before / 1024, "rss_peak_mib": peak / 1024, "rss_growth_mib": peak.saturating_sub(before) / 1024})
    );
    Ok(())
}
