//! HTTPS on every listener (`tern up --tls`), and regions that talk to each
//! other over mutual TLS.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ReplicationStatus;
use tern_testkit::Deployment;

use crate::replication::{READ_AND_REPLICATE, replicate, rule, settled, versioned};
use crate::{EAST, WEST};

async fn two_tls_regions() -> Deployment {
    Deployment::start_tls(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST, WEST]).await.expect("tern starts with TLS")
}

#[tokio::test]
async fn regions_serve_https_only_and_replicate_to_each_other_over_mutual_tls() {
    let tern = two_tls_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    assert!(tern.endpoint(EAST).starts_with("https://"));
    // The bucket registry (east) is asked by west over mutual TLS.
    versioned(&east, "tls-src", EAST).await;
    versioned(&west, "tls-dst", WEST).await;
    let role = tern.replication_role(EAST, "tls", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "tls-src", &role, vec![rule("all", 1, "", "tls-dst")]).await;
    let body = crate::pattern(300_000, 9);
    east.put_object().bucket("tls-src").key("k").body(ByteStream::from(body.clone())).send().await.unwrap();
    assert_eq!(settled(&east, "tls-src", "k").await, Some(ReplicationStatus::Completed), "{}", tern.log());
    assert_eq!(crate::body_of(&west, "tls-dst", "k").await, body);

    let plain = tern.endpoint(EAST).replace("https://", "http://");
    let answer = reqwest::get(format!("{plain}/_tern/health")).await;
    assert!(answer.is_err(), "the TLS port speaks no plaintext: {answer:?}");
}

#[tokio::test]
async fn routes_between_regions_need_the_peer_certificate_whatever_the_signature() {
    let tern = two_tls_regions().await;
    let root = tern.root();
    let refused = [
        ("s3", "GET", "/_tern/registry/some-bucket", vec![]),
        ("s3", "PUT", "/_tern/replicate/some-bucket/k", vec![]),
        ("kms", "POST", "/_tern/kms", vec![("x-amz-target", "TernInternal.SyncKey")]),
        ("iam", "POST", "/_tern/iam/snapshot", vec![]),
    ];
    for (service, method, path, headers) in refused {
        let answer = tern.call_as(&root, EAST, service, (method, path), &headers, Vec::new()).await.unwrap();
        assert_eq!(answer.status, 403, "{path}: {}", answer.text());
        assert!(answer.text().contains("peer certificate"), "{path}: {}", answer.text());
    }
    crate::bucket(&tern.s3(EAST), "ops").await;
    let status = tern.admin_call(EAST, "GET", "/_tern/replication/ops").await;
    assert!(status.is_ok(), "operators reach the admin API without one: {status:?}");
}

#[tokio::test]
async fn a_new_certificate_is_served_after_sighup_and_open_connections_stay() {
    let tern = two_tls_regions().await;
    let other = two_tls_regions().await; // Its own CA: a certificate the first CA did not sign.
    let old_trust = tern.http().unwrap();
    let health = format!("{}/_tern/health", tern.endpoint(EAST));
    assert!(old_trust.get(&health).send().await.unwrap().status().is_success());

    let (tls, new) = (tern.data_dir().join("tls"), other.data_dir().join("tls"));
    for file in ["us-east-1.pem", "us-east-1.key"] {
        std::fs::copy(new.join(file), tls.join(file)).unwrap();
    }
    tern.hang_up().unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(other.ca()).unwrap()).unwrap();
    let new_trust = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    tern_testkit::eventually(std::time::Duration::from_secs(5), "the new certificate", || async {
        new_trust.get(&health).send().await.ok().filter(|r| r.status().is_success()).map(drop)
    })
    .await;
    let fresh = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(tern.ca()).unwrap()).unwrap()])
        .build()
        .unwrap();
    assert!(fresh.get(&health).send().await.is_err(), "new handshakes get the new certificate");
    assert!(old_trust.get(&health).send().await.unwrap().status().is_success(), "the open connection stays");
}

#[tokio::test]
async fn policies_that_require_tls_allow_what_comes_over_it() {
    let tern = Deployment::start_tls(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST]).await.expect("tern starts");
    let tls_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","kms:*"],
        "Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
    let user = tern.user("tls-only", tls_only).await.unwrap();
    let s3 = tern.s3_as(&user, EAST);
    s3.create_bucket().bucket("tls-only").send().await.expect("S3 over TLS is secure transport");
    let key = tern.kms_as(&user, EAST, "CreateKey", "{}").await.unwrap();
    assert_eq!(key.status, 200, "KMS over TLS is secure transport: {}", key.text());
    let kms_via_s3 = s3
        .put_object()
        .bucket("tls-only")
        .key("k")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(kms_via_s3.is_ok(), "S3's own calls to KMS are secure transport too: {kms_via_s3:?}");
}
