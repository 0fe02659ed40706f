//! A region on PostgreSQL against the embedded default, in one run, on a
//! PostgreSQL cluster of the bench's own (run under `scripts/with-postgres`):
//!
//! - PUT/GET per workload: one front-end on PostgreSQL and a shared blob
//!   directory against `tern up` on `SQLite`, ratio to `SQLite`;
//! - two front-ends of one region, each taking half the load, against one
//!   front-end taking all of it, ratio to one;
//! - the replication outbox drained by the workers of two front-ends
//!   against one (4 KiB objects re-driven at once), ratio to one;
//! - database transactions per PUT, GET and replicated version, counted by
//!   PostgreSQL (`pg_stat_database`), the idle front-ends' own background
//!   work (outbox polls, key store and IAM looks) subtracted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_s3::Client;
use serde_json::json;
use sqlx::Connection as _;
use tern_testkit::{Deployment, PgCluster};

use crate::Args;
use crate::measure::{Measure, WORKLOADS, Workload, report, without_flexible_checksums};
use crate::objects::{Encryption, put_get};
use crate::replication::{READ_AND_REPLICATE, replicated_pair};

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";

fn client(tern: &Deployment, name: &str) -> Client {
    let config = tern.s3(name).config().to_builder();
    Client::from_conf(without_flexible_checksums(config).build())
}

pub async fn run(args: &Args, embedded: &Deployment) -> anyhow::Result<()> {
    let cluster = PgCluster::start()?.context("run under scripts/with-postgres: the suite needs PostgreSQL")?;
    let admin = cluster.admin_url()?;
    let layout = [(EAST, 2), (WEST, 1)];
    let mut shared = Deployment::start_shared_on(&args.tern_bin, &layout, "", &admin).await?;
    let targets = [
        crate::peers::Target::new("sqlite", client(embedded, EAST), embedded.pid()),
        crate::peers::Target::new("postgres", client(&shared, EAST), None),
    ];
    crate::peers::compare(args, &targets).await?;
    two_front_ends(args, &shared).await?;
    drain(args, &mut shared).await?;
    transactions(&shared, &admin).await
}

/// One front-end taking all the load against two taking half each, at the
/// same total concurrency.
async fn two_front_ends(args: &Args, tern: &Deployment) -> anyhow::Result<()> {
    let (one, two) = (client(tern, EAST), client(tern, "us-east-1#2"));
    for w in WORKLOADS.iter().filter(|w| w.name != "64m" && args.workloads.iter().any(|n| n == w.name)) {
        let requests = w.requests(args.scale);
        let half = Workload { concurrency: w.concurrency / 2, ..*w };
        let (mut alone, mut together) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let bucket = |n: usize| format!("fe-{}-{round}-{n}", w.name);
            for b in 0..3 {
                one.create_bucket().bucket(bucket(b)).send().await?;
            }
            alone.push(put_get(&one, &bucket(0), w, requests, &Encryption::Default).await?);
            let (a, b) = futures::future::join(
                put_get(&one, &bucket(1), &half, requests / 2, &Encryption::Default),
                put_get(&two, &bucket(2), &half, requests / 2, &Encryption::Default),
            )
            .await;
            let (a, b) = (a?, b?);
            together.push((sum(a.0, b.0), sum(a.1, b.1)));
        }
        for (op, pick) in [("PUT", 0), ("GET", 1)] {
            let of = |runs: &[(Measure, Measure)]| runs.iter().map(|r| if pick == 0 { r.0 } else { r.1 }).collect();
            let fields = json!({"metric": "front_ends", "workload": w.name, "op": op, "requests": requests,
                                "concurrency": w.concurrency});
            let series = [("one-front-end".to_owned(), of(&alone)), ("two-front-ends".to_owned(), of(&together))];
            report(&fields, &series, |m| m.mb_per_sec);
        }
    }
    Ok(())
}

/// Two halves run side by side: their rates add up.
fn sum(a: Measure, b: Measure) -> Measure {
    Measure {
        ops_per_sec: a.ops_per_sec + b.ops_per_sec,
        mb_per_sec: a.mb_per_sec + b.mb_per_sec,
        p50_ms: a.p50_ms.max(b.p50_ms),
        p99_ms: a.p99_ms.max(b.p99_ms),
        server_cpu_ms: None,
    }
}

/// Seconds to drain a backlog of `objects` 4 KiB versions built with a role
/// that may not replicate, then granted and re-driven at once.
async fn drain_once(tern: &Deployment, name: &str, objects: usize) -> anyhow::Result<f64> {
    let (source, destination) = (client(tern, EAST), client(tern, WEST));
    let role = tern.replication_role(EAST, name, r#"["s3:ListBucket"]"#).await?;
    replicated_pair(&source, &destination, name, &role, None).await?;
    let bucket = format!("{name}-src");
    let w = Workload { name: "4k", size: 4 << 10, concurrency: 16, requests: objects };
    let body = w.body();
    crate::measure::measure(objects, w.concurrency, w.size, |i| {
        let put = source.put_object().bucket(&bucket).key(format!("o{i}")).body(body.clone().into());
        async move { put.send().await.map(|_| ()).map_err(Into::into) }
    })
    .await?;
    let report_path = format!("/_tern/replication/{bucket}");
    let count = |state: &'static str| {
        let path = report_path.clone();
        async move {
            let report: serde_json::Value = serde_json::from_str(&tern.admin_call(EAST, "GET", &path).await?)?;
            Ok::<_, anyhow::Error>(report["counts"][state].as_u64().unwrap_or(0) as usize)
        }
    };
    while count("FAILED").await? < objects {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tern.allow_role(EAST, name, READ_AND_REPLICATE).await?;
    let started = Instant::now();
    tern.admin_call(EAST, "POST", &format!("{report_path}/retry")).await?;
    while count("COMPLETED").await? < objects {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The outbox drained by one front-end's workers (the other stopped)
/// against both front-ends'.
async fn drain(args: &Args, tern: &mut Deployment) -> anyhow::Result<()> {
    let objects = ((2000.0 * args.scale) as usize).max(100);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        tern.stop_region("us-east-1#2").await?;
        one.push(objects as f64 / drain_once(tern, &format!("drain1-{round}"), objects).await?);
        tern.start_region("us-east-1#2").await?;
        two.push(objects as f64 / drain_once(tern, &format!("drain2-{round}"), objects).await?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, two) = (median(one), median(two));
    println!(
        "{}",
        json!({"metric": "outbox_drain_4k", "objects": objects, "rounds": args.rounds,
               "one_front_end_versions_per_sec": one.round(), "two_front_ends_versions_per_sec": two.round(),
               "ratio_to_one": (two / one * 100.0).round() / 100.0})
    );
    Ok(())
}

/// Transactions PostgreSQL committed or rolled back so far, in every database.
async fn transactions_so_far(admin: &str) -> anyhow::Result<i64> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    // The counters of other backends reach shared memory within a second.
    let total: i64 =
        sqlx::query_scalar("SELECT CAST(sum(xact_commit + xact_rollback) AS BIGINT) FROM pg_stat_database")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    Ok(total)
}

/// Transactions per operation: those of `ops` operations in a window,
/// less those of the same window idle, per operation.
async fn per_op<F, Fut>(admin: &str, ops: usize, work: F) -> anyhow::Result<f64>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let settle = Duration::from_millis(1500);
    let before = transactions_so_far(admin).await?;
    let started = Instant::now();
    work().await?;
    tokio::time::sleep(settle).await;
    let busy = transactions_so_far(admin).await? - before;
    let window = started.elapsed();
    let idle_before = transactions_so_far(admin).await?;
    tokio::time::sleep(window).await;
    let idle = transactions_so_far(admin).await? - idle_before;
    Ok((busy - idle) as f64 / ops as f64)
}

async fn transactions(tern: &Deployment, admin: &str) -> anyhow::Result<()> {
    let s3 = client(tern, EAST);
    s3.create_bucket().bucket("xacts").send().await?;
    let body = bytes::Bytes::from_static(&[7; 4096]);
    let ops = 500;
    let put = per_op(admin, ops, || async {
        for i in 0..ops {
            s3.put_object().bucket("xacts").key(format!("o{i}")).body(body.clone().into()).send().await?;
        }
        Ok(())
    })
    .await?;
    let get = per_op(admin, ops, || async {
        for i in 0..ops {
            s3.get_object().bucket("xacts").key(format!("o{i}")).send().await?.body.collect().await?;
        }
        Ok(())
    })
    .await?;
    println!(
        "{}",
        json!({"metric": "postgres_transactions_per_op", "size": 4096, "ops": ops,
               "put": (put * 100.0).round() / 100.0, "get": (get * 100.0).round() / 100.0})
    );
    Ok(())
}
