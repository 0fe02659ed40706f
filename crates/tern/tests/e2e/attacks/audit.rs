//! Attacks on the audit trail (issue 12's attack on a running build): a
//! record must not be steered by what a caller sends, nor made large by it.

use serde_json::Value;

use crate::EAST;

fn recorded(tern: &tern_testkit::Deployment, event: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["audit", "--config", tern.config_path().to_str().unwrap(), "--event", event, "--json"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn an_unsigned_caller_cannot_make_large_records() {
    let mut tern = crate::one_region().await;
    // Refused, and recorded, with its Host cut to what a name can be.
    let host = format!("{}.example", "h".repeat(60_000));
    let url = format!("{}/victim-bucket?policy", tern.endpoint(EAST));
    let answer = tern.http().unwrap().put(&url).header("host", &host).body("{}").send().await.unwrap();
    assert_eq!(answer.status(), 403);
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());
    let records = recorded(&tern, "PutBucketPolicy");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["userIdentity"]["accountId"], "ANONYMOUS_PRINCIPAL");
    assert_eq!(records[0]["errorCode"], "AccessDenied");
    assert!(records[0]["requestParameters"]["Host"].as_str().unwrap().len() <= 256);
}

#[tokio::test]
async fn a_caller_cannot_choose_the_event_name() {
    let mut tern = crate::one_region().await;
    let target = format!("ScheduleKeyDeletion{}from 10.9.8.7  ok", " ".repeat(400));
    let answer = tern.kms_as(&tern.root(), EAST, &target, "{}").await.unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());
    let records = recorded(&tern, "InvalidAction");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0]["errorMessage"].as_str().unwrap().len() <= 1024 + 3);
    assert!(recorded(&tern, "ScheduleKeyDeletion").is_empty());
}
