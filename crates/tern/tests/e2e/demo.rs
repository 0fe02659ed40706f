//! `tern demo` on a fresh deployment: every cell of its table comes from
//! what the deployment answered, the reader decrypts in both regions (and
//! is seen not to once a key is withdrawn), a second run reuses what the
//! first made, and `--cleanup` leaves nothing behind.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{EAST, WEST, two_regions};

fn demo(tern: &tern_testkit::Deployment, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("demo")
        .args(["--endpoint-us", &tern.endpoint(EAST), "--endpoint-eu", &tern.endpoint(WEST)])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
        .output()
        .expect("tern runs")
}

/// The table's rows, from `--json`: three models, source then replica.
fn rows(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().map(|line| serde_json::from_str(line).expect("a JSON row")).collect()
}

fn key_id(row: &Value) -> &str {
    row["key"].as_str().unwrap().rsplit('/').next().unwrap()
}

#[tokio::test]
async fn demo_builds_the_three_models_shows_each_region_and_cleans_up() {
    let tern = two_regions().await;
    let started = Instant::now();
    let first = rows(&demo(&tern, &["--json"]));
    assert!(started.elapsed() < Duration::from_mins(1));
    assert_eq!(first.len(), 6);
    for row in &first {
        for (field, value) in row.as_object().unwrap() {
            assert!(!value.as_str().unwrap_or_default().is_empty(), "{field} is empty in {row}");
        }
        assert_eq!(row["reader_decrypts"], "yes", "{row}");
    }
    let [cse_us, cse_eu, regional_us, regional_eu, mrk_us, mrk_eu] = first.as_slice() else { unreachable!() };
    assert_eq!(cse_us["region"], EAST);
    assert_eq!(cse_eu["region"], WEST);
    assert_eq!(cse_us["replication"], "source: COMPLETED");
    assert_eq!(cse_eu["replication"], "copied: the same ciphertext");
    assert_eq!(cse_eu["s3_saw_plaintext"], "no: only ciphertext");
    assert!(cse_eu["key"].as_str().unwrap().starts_with(&format!("arn:aws:kms:{WEST}:")), "{cse_eu}");
    assert_eq!(key_id(cse_us), key_id(cse_eu), "one multi-Region key");
    assert_eq!(regional_eu["replication"], "re-encrypted under this region's key");
    assert_eq!(regional_eu["encryption"], "SSE-KMS");
    assert_ne!(key_id(regional_us), key_id(regional_eu));
    assert_eq!(mrk_eu["replication"], "handed over sealed: the same key");
    assert_eq!(key_id(mrk_us), key_id(mrk_eu));
    assert!(mrk_eu["key"].as_str().unwrap().starts_with(&format!("arn:aws:kms:{WEST}:")));

    // Again, as text: the same keys, found rather than made anew.
    let text = demo(&tern, &[]);
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success() && table.contains("permissions, least privilege"), "{table}");
    assert!(table.contains(cse_eu["key"].as_str().unwrap()), "{table}");
    assert!(table.contains("kms:Encrypt, kms:GenerateDataKey on ") && table.contains("(only via s3.eu-west-1"));

    // The reader's attempt is real: with the key's replica withdrawn in
    // eu-west-1, the client-side replica no longer decrypts there.
    tern.kms(WEST).schedule_key_deletion().key_id(key_id(cse_eu)).pending_window_in_days(7).send().await.unwrap();
    let after = rows(&demo(&tern, &["--json"]));
    let refused = after[1]["reader_decrypts"].as_str().unwrap();
    assert!(refused.starts_with("no: "), "{refused}");
    assert_eq!(after[0]["reader_decrypts"], "yes", "us-east-1 still has the key");

    let cleanup = demo(&tern, &["--cleanup"]);
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(cleanup.status.success(), "{said}");
    assert!(said.contains("removed bucket tern-demo-sse-kms-mrk-eu-west-1") && said.contains("removed user"), "{said}");
    for region in [EAST, WEST] {
        let buckets = tern.s3(region).list_buckets().send().await.unwrap();
        assert!(buckets.buckets().iter().all(|b| !b.name().unwrap_or_default().starts_with("tern-demo-")));
    }
    let again = demo(&tern, &["--cleanup"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing of the demo is left"));
}
