//! The trail as `tern audit verify` sees it: written by a real writer,
//! then tampered with as an intruder with write access to the files would.

use std::path::{Path, PathBuf};

use tern_audit::query::{Filter, records};
use tern_audit::verify::verify_dir;
use tern_audit::{AuditLog, Call, ChainKey, Durability, Options, Record, Resource, Service, Source};
use tern_crypto::Key256;
use tern_iam::policy::Principal;

fn key() -> ChainKey {
    ChainKey::derived(&Key256::from_bytes([9; 32]))
}

fn options(dir: &Path, max_file_bytes: u64) -> Options {
    Options { dir: dir.to_path_buf(), region: "us-east-1".into(), max_file_bytes }
}

fn record(name: &str) -> Record {
    let principal = Principal::user("123456789012", "alice");
    let call = Call {
        service: Service::Kms,
        name,
        region: "us-east-1",
        account: "123456789012",
        principal: &principal,
        source: Source::client(Some([127, 0, 0, 1].into()), Some("aws-cli/2")),
        read_only: false,
    };
    let key = Resource::kms_key("123456789012", "arn:aws:kms:us-east-1:123456789012:key/k1");
    Record::new(&call, Ok(()), None).with_resources(vec![key])
}

async fn write(dir: &Path, max_file_bytes: u64, names: &[&str]) {
    let log = AuditLog::open(&options(dir, max_file_bytes), key()).unwrap();
    for name in names {
        log.append(&record(name), Durability::BeforeResponse).await.unwrap();
    }
    log.close().await;
}

fn files(dir: &Path) -> Vec<PathBuf> {
    tern_audit::files::list(dir).unwrap().into_iter().map(|(_, p)| p).collect()
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    change(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn a_trail_reads_back_verifies_and_rolls_over() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("Event{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    write(dir.path(), 4096, &names).await;
    write(dir.path(), 4096, &["Later"]).await;
    let summaries = verify_dir(dir.path(), &key()).unwrap();
    assert!(summaries.len() > 3, "{summaries:?}");
    assert!(summaries.iter().all(|s| s.closed));
    assert_eq!(summaries.iter().map(|s| s.records).sum::<u64>(), 31);
    let found = records(dir.path(), &Filter::default()).unwrap();
    let read: Vec<&str> = found.iter().map(|s| s.record["eventName"].as_str().unwrap()).collect();
    assert_eq!(read[..30], names[..]);
    assert_eq!(read[30], "Later");
    let event = Filter { event: Some("Event3".into()), ..Filter::default() };
    assert_eq!(records(dir.path(), &event).unwrap().len(), 1);
    // Another root key cannot vouch for these files.
    assert!(verify_dir(dir.path(), &ChainKey::derived(&Key256::from_bytes([1; 32]))).is_err());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&files(dir.path())[0]).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn every_kind_of_tampering_is_found() {
    type Tamper = fn(&Path);
    let cases: [(&str, Tamper); 6] = [
        ("changed", |dir| edit(&files(dir)[0], |l| l[2] = l[2].replace("alice", "mallory"))),
        ("removed", |dir| edit(&files(dir)[0], |l| drop(l.remove(2)))),
        ("reordered", |dir| edit(&files(dir)[0], |l| l.swap(1, 2))),
        ("duplicated", |dir| edit(&files(dir)[0], |l| l.insert(2, l[1].clone()))),
        ("file removed", |dir| std::fs::remove_file(&files(dir)[1]).unwrap()),
        ("tail removed", |dir| edit(&files(dir)[0], |l| l.truncate(l.len() - 2))),
    ];
    for (what, tamper) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 2048, &["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]).await;
        assert!(files(dir.path()).len() >= 3);
        verify_dir(dir.path(), &key()).unwrap();
        tamper(dir.path());
        let findings = verify_dir(dir.path(), &key()).expect_err(what);
        assert!(!findings.0.is_empty() && !findings.0[0].what.is_empty(), "{what}: {findings}");
    }
}

#[tokio::test]
async fn a_crash_loses_no_synced_record_and_the_trail_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&options(dir.path(), 1 << 20), key()).unwrap();
    log.append(&record("Synced"), Durability::BeforeResponse).await.unwrap();
    // The process dies: the file is never closed, and a line is torn.
    drop(log);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let open = files(dir.path())[0].clone();
    edit(&open, |lines| lines.truncate(lines.len() - 1));
    let mut torn = std::fs::read(&open).unwrap();
    torn.extend_from_slice(br#"{"eventVersion":"1.09","eventNa"#);
    std::fs::write(&open, torn).unwrap();
    assert!(!verify_dir(dir.path(), &key()).unwrap()[0].closed);
    write(dir.path(), 1 << 20, &["AfterRestart"]).await;
    let summaries = verify_dir(dir.path(), &key()).unwrap();
    assert_eq!(summaries.len(), 2);
    let names: Vec<String> = records(dir.path(), &Filter::default())
        .unwrap()
        .iter()
        .map(|s| s.record["eventName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Synced", "AfterRestart"]);
}

#[tokio::test]
async fn a_stopped_trail_refuses_rather_than_keeps_callers_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&options(dir.path(), 1 << 20), key()).unwrap();
    log.append(&record("Before"), Durability::BeforeResponse).await.unwrap();
    log.close().await;
    let after = record("After");
    let late = log.append(&after, Durability::BeforeResponse);
    let late = tokio::time::timeout(std::time::Duration::from_secs(5), late);
    assert!(late.await.expect("answered at once").is_err());
    log.close().await;
    assert_eq!(records(dir.path(), &Filter::default()).unwrap().len(), 1);
}

#[tokio::test]
async fn recovery_never_seals_over_a_changed_record() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1 << 20, &["A", "B"]).await;
    // As a crash would leave it (no digest), then changed by an intruder.
    edit(&files(dir.path())[0], |lines| {
        lines.pop();
        lines[1] = lines[1].replace("alice", "mallory");
    });
    write(dir.path(), 1 << 20, &["C"]).await;
    let findings = verify_dir(dir.path(), &key()).unwrap_err();
    assert!(findings.0[0].file.ends_with("audit-00000001.jsonl"), "{findings}");
    let first = std::fs::read_to_string(&files(dir.path())[0]).unwrap();
    assert!(!first.contains("recovered"), "the changed file was sealed: {first}");
}

#[tokio::test]
async fn a_torn_tail_is_never_shown_as_a_record() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1 << 20, &["Real"]).await;
    let newest = files(dir.path()).last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let forged = format!(r#"{{"eventVersion":"1.09","eventName":"Forged","ternChain":"{}"}}"#, "0".repeat(64));
    bytes.extend_from_slice(forged.as_bytes());
    std::fs::write(&newest, bytes).unwrap();
    let names: Vec<String> = records(dir.path(), &Filter::default())
        .unwrap()
        .iter()
        .map(|s| s.record["eventName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Real"]);
}

#[tokio::test]
async fn one_damaged_line_does_not_hide_tampering_further_on() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 2048, &["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]).await;
    let all = files(dir.path());
    assert!(all.len() >= 3);
    edit(&all[0], |lines| lines[1] = lines[1].replace("alice", "mallory"));
    edit(all.last().unwrap(), |lines| lines[1] = lines[1].replace("alice", "eve"));
    let findings = verify_dir(dir.path(), &key()).unwrap_err();
    let files_found: Vec<&std::path::Path> = findings.0.iter().map(|f| f.file.as_path()).collect();
    assert_eq!(files_found, [all[0].as_path(), all.last().unwrap().as_path()], "{findings}");
}
