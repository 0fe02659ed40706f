//! Bucket policies: stored as written, validated as AWS does, and read
//! beside identity policies on every S3 request (an explicit deny anywhere
//! wins; an allow in either suffices).

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ReplicationStatus, ServerSideEncryption};
use tern_testkit::Deployment;

use crate::replication::{READ_AND_REPLICATE, replicate, rule, settled, status_report, versioned};
use crate::{EAST, WEST, code, one_region, status, two_regions};

fn policy(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

async fn put_policy(s3: &Client, bucket: &str, text: &str) {
    s3.put_bucket_policy().bucket(bucket).policy(text).send().await.expect("policy put");
}

async fn put(s3: &Client, bucket: &str, key: &str) -> Result<(), String> {
    let sent = s3.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"x")).send().await;
    sent.map(drop).map_err(|e| code(&e))
}

#[tokio::test]
async fn policies_round_trip_as_written_and_malformed_ones_are_refused() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "pol").await;
    let missing = s3.get_bucket_policy().bucket("pol").send().await.unwrap_err();
    assert_eq!((code(&missing).as_str(), status(&missing)), ("NoSuchBucketPolicy", 404));
    let private = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}"#,
    );
    put_policy(&s3, "pol", &private).await;
    assert_eq!(s3.get_bucket_policy().bucket("pol").send().await.unwrap().policy(), Some(private.as_str()));
    let status_of = || async {
        let out = s3.get_bucket_policy_status().bucket("pol").send().await.unwrap();
        out.policy_status().and_then(aws_sdk_s3::types::PolicyStatus::is_public)
    };
    assert_eq!(status_of().await, Some(false));
    put_policy(
        &s3,
        "pol",
        &policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}"#),
    )
    .await;
    assert_eq!(status_of().await, Some(true), "anyone, unconditionally: public");

    let refused = [
        "{not json".to_owned(),
        policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}"#),
        policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/nobody"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}"#,
        ),
        policy(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}"#),
    ];
    for text in refused {
        let err = s3.put_bucket_policy().bucket("pol").policy(&text).send().await.unwrap_err();
        assert_eq!((code(&err).as_str(), status(&err)), ("MalformedPolicy", 400), "{text}");
    }
    s3.delete_bucket_policy().bucket("pol").send().await.unwrap();
    assert_eq!(code(&s3.get_bucket_policy().bucket("pol").send().await.unwrap_err()), "NoSuchBucketPolicy");
}

/// The policy every guide shows: objects must be written with SSE-KMS under
/// one key. It binds the account's root too.
#[tokio::test]
async fn put_object_is_denied_unless_sse_kms_with_the_named_key() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "kms-only").await;
    let kms = tern.kms(EAST);
    let arn = || async { kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap() };
    let (key, other) = (arn().await, arn().await);
    put_policy(&s3, "kms-only", &policy(&format!(
        r#"{{"Sid":"RequireKey","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::kms-only/*",
            "Condition":{{"StringNotLikeIfExists":{{"s3:x-amz-server-side-encryption-aws-kms-key-id":"{key}"}}}}}},
           {{"Sid":"RequireKms","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::kms-only/*",
            "Condition":{{"StringNotEquals":{{"s3:x-amz-server-side-encryption":"aws:kms"}}}}}}"#
    ))).await;
    assert_eq!(put(&s3, "kms-only", "plain").await, Err("AccessDenied".to_owned()));
    let with_key = |key: &str| {
        s3.put_object()
            .bucket("kms-only")
            .key("sealed")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(key)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    assert_eq!(with_key(&other).await.map(drop).map_err(|e| code(&e)), Err("AccessDenied".to_owned()));
    assert!(with_key(&key).await.is_ok(), "the named key is allowed");
}

const TLS_ONLY: &str = r#"{"Sid":"TlsOnly","Effect":"Deny","Principal":"*","Action":"s3:*",
    "Resource":["arn:aws:s3:::secure","arn:aws:s3:::secure/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#;

/// The other policy every guide shows: no request without TLS. The root
/// may still read and remove the policy, so it can never lock itself out.
#[tokio::test]
async fn requests_without_tls_are_denied_and_the_root_can_still_remove_the_policy() {
    let plain = one_region().await;
    let s3 = plain.s3(EAST);
    crate::bucket(&s3, "secure").await;
    put_policy(&s3, "secure", &policy(TLS_ONLY)).await;
    assert_eq!(put(&s3, "secure", "k").await, Err("AccessDenied".to_owned()));
    assert!(s3.get_bucket_policy().bucket("secure").send().await.is_ok());
    s3.delete_bucket_policy().bucket("secure").send().await.expect("the root removes a policy that denies it");
    assert_eq!(put(&s3, "secure", "k").await, Ok(()));

    let tls = Deployment::start_tls(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST]).await.expect("tern starts");
    let s3 = tls.s3(EAST);
    crate::bucket(&s3, "secure").await;
    put_policy(&s3, "secure", &policy(TLS_ONLY)).await;
    assert_eq!(put(&s3, "secure", "k").await, Ok(()), "over TLS the same policy allows");
}

#[tokio::test]
async fn a_bucket_policy_alone_can_grant_and_its_deny_beats_an_identity_allow() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "shared").await;
    put(&s3, "shared", "doc").await.unwrap();
    let nothing = policy(r#"{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}"#);
    let everything = policy(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#);
    let reader = tern.user("reader", &nothing).await.unwrap();
    let writer = tern.user("writer", &everything).await.unwrap();
    put_policy(&s3, "shared", &policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/reader"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"},
           {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/writer"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/*"}"#,
    )).await;
    let (as_reader, as_writer) = (tern.s3_as(&reader, EAST), tern.s3_as(&writer, EAST));
    assert!(as_reader.get_object().bucket("shared").key("doc").send().await.is_ok(), "granted by the bucket alone");
    assert_eq!(put(&as_reader, "shared", "new").await, Err("AccessDenied".to_owned()), "and only that");
    assert_eq!(put(&as_writer, "shared", "new").await, Err("AccessDenied".to_owned()), "the bucket's deny wins");
    assert!(as_writer.get_object().bucket("shared").key("doc").send().await.is_ok(), "what it does not deny stays");
}

/// A deny in the destination bucket's policy fails replication with AWS's reason.
#[tokio::test]
async fn replication_honours_the_destination_bucket_policy() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "bp-src", EAST).await;
    versioned(&west, "bp-dst", WEST).await;
    let role = tern.replication_role(EAST, "bp", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "bp-src", &role, vec![rule("all", 1, "", "bp-dst")]).await;
    put_policy(&west, "bp-dst", &policy(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{role}"}},"Action":"s3:ReplicateObject","Resource":"arn:aws:s3:::bp-dst/*"}}"#
    ))).await;
    put(&east, "bp-src", "k").await.unwrap();
    assert_eq!(settled(&east, "bp-src", "k").await, Some(ReplicationStatus::Failed));
    let report = status_report(&tern, "bp-src");
    assert_eq!(report["failed"][0]["reason"], "DstPutObjectNotPermitted", "{report}");
}
