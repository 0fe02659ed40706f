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

/// A region whose account lets buckets opt out of Block Public Access.
async fn open_region() -> Deployment {
    let binary = env!("CARGO_BIN_EXE_tern").as_ref();
    Deployment::start_with(binary, &[EAST], "block_public_access = false").await.expect("tern starts")
}

#[tokio::test]
async fn policies_round_trip_as_written_and_malformed_ones_are_refused() {
    let tern = open_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "pol").await;
    let public =
        policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}"#);
    let blocked = s3.put_bucket_policy().bucket("pol").policy(&public).send().await.unwrap_err();
    assert_eq!(code(&blocked), "AccessDenied", "a new bucket blocks public policies");
    s3.delete_public_access_block().bucket("pol").send().await.unwrap();
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

    // `tern replication check` asks the destination's region, which holds its policy.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["replication", "check", "--bucket", "bp-src", "--endpoint", &tern.endpoint(EAST)])
        .env("AWS_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
        .env("AWS_REGION", EAST)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{text}");
    assert!(
        text.contains("s3:ReplicateObject on arn:aws:s3:::bp-dst/*") && text.contains("resource-based policy"),
        "{text}"
    );
}

const NOT_PUBLIC: &str =
    r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::matrix/public/*"}"#;

/// Who calls in the matrix.
#[derive(Clone, Copy, Debug)]
enum Who {
    Root,
    /// Identity policy: `s3:*` on everything.
    Alice,
    /// Identity policy: nothing of S3.
    Bob,
    /// Identity policy: `s3:*`, and an explicit deny of `s3:PutObject`.
    Carol,
}

/// What the caller tries.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get(&'static str),
    Put(&'static str),
    PutSse(&'static str),
    PutTagged(&'static str, &'static str),
    List(&'static str, i32),
    GetPolicy,
}

async fn perform(s3: &Client, op: Op) -> bool {
    const B: &str = "matrix";
    let put = |key| s3.put_object().bucket(B).key(key).body(ByteStream::from_static(b"x"));
    match op {
        Op::Get(key) => s3.get_object().bucket(B).key(key).send().await.is_ok(),
        Op::Put(key) => put(key).send().await.is_ok(),
        Op::PutSse(key) => put(key).server_side_encryption(ServerSideEncryption::Aes256).send().await.is_ok(),
        Op::PutTagged(key, tags) => put(key).tagging(tags).send().await.is_ok(),
        Op::List(prefix, max) => s3.list_objects_v2().bucket(B).prefix(prefix).max_keys(max).send().await.is_ok(),
        Op::GetPolicy => s3.get_bucket_policy().bucket(B).send().await.is_ok(),
    }
}

/// Bucket policy × identity policy × principal forms × conditions, each
/// with the outcome AWS documents for a request within one account.
#[tokio::test]
async fn the_policy_matrix_decides_as_aws_documents() {
    use Op::{Get, GetPolicy, List, Put, PutSse, PutTagged};
    use Who::{Alice, Bob, Carol, Root};
    const ALICE: &str = "arn:aws:iam::000000000000:user/alice";
    const BOB: &str = "arn:aws:iam::000000000000:user/bob";
    let tern = open_region().await;
    let root = tern.s3(EAST);
    crate::bucket(&root, "matrix").await;
    root.delete_public_access_block().bucket("matrix").send().await.unwrap();
    for key in ["a", "docs/a", "public/a"] {
        put(&root, "matrix", key).await.unwrap();
    }
    let everything = policy(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#);
    let nothing = policy(r#"{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}"#);
    let all_but_put = policy(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}"#,
    );
    let alice = tern.s3_as(&tern.user("alice", &everything).await.unwrap(), EAST);
    let bob = tern.s3_as(&tern.user("bob", &nothing).await.unwrap(), EAST);
    let carol = tern.s3_as(&tern.user("carol", &all_but_put).await.unwrap(), EAST);
    let client = |who: Who| match who {
        Root => &root,
        Alice => &alice,
        Bob => &bob,
        Carol => &carol,
    };
    let statement = |effect: &str, principal: &str, action: &str, resource: &str, extra: &str| {
        format!(r#"{{"Effect":"{effect}",{principal},"Action":"{action}","Resource":"{resource}"{extra}}}"#)
    };
    let user = |arn: &str| format!(r#""Principal":{{"AWS":"{arn}"}}"#);
    let anyone = r#""Principal":"*""#.to_owned();
    let objects = "arn:aws:s3:::matrix/*";
    let bucket = "arn:aws:s3:::matrix";
    let when = |condition: &str| format!(r#","Condition":{condition}"#);
    let cases: Vec<(Option<String>, Who, Op, bool)> = vec![
        (None, Alice, Get("a"), true),
        (None, Bob, Get("a"), false),
        (None, Carol, Put("c"), false),
        (Some(statement("Allow", &user(BOB), "s3:GetObject", objects, "")), Bob, Get("a"), true),
        (Some(statement("Allow", &user(BOB), "s3:GetObject", objects, "")), Bob, Put("b"), false),
        (Some(statement("Allow", &anyone, "s3:GetObject", objects, "")), Bob, Get("a"), true),
        (Some(statement("Allow", r#""Principal":{"AWS":"*"}"#, "s3:GetObject", objects, "")), Bob, Get("a"), true),
        (
            Some(statement("Allow", &user("arn:aws:iam::000000000000:root"), "s3:GetObject", objects, "")),
            Bob,
            Get("a"),
            false,
        ),
        (
            Some(statement("Allow", &user("arn:aws:iam::000000000000:root"), "s3:GetObject", objects, "")),
            Alice,
            Get("a"),
            true,
        ),
        (Some(statement("Allow", &user("000000000000"), "s3:GetObject", objects, "")), Bob, Get("a"), false),
        (
            Some(statement("Allow", r#""Principal":{"Service":"s3.amazonaws.com"}"#, "s3:GetObject", objects, "")),
            Bob,
            Get("a"),
            false,
        ),
        (Some(statement("Allow", &user(BOB), "s3:Get*", objects, "")), Bob, Get("a"), true),
        (Some(statement("Allow", &user(BOB), "s3:GetObject", bucket, "")), Bob, Get("a"), false),
        (
            Some(statement("Allow", &user(BOB), "s3:GetObject", "arn:aws:s3:::matrix/docs/*", "")),
            Bob,
            Get("docs/a"),
            true,
        ),
        (Some(statement("Allow", &user(BOB), "s3:GetObject", "arn:aws:s3:::matrix/docs/*", "")), Bob, Get("a"), false),
        (
            Some(statement("Allow", &user("arn:aws:iam::000000000000:user/carol"), "s3:PutObject", objects, "")),
            Carol,
            Put("c"),
            false,
        ),
        (Some(statement("Deny", &user(ALICE), "s3:PutObject", objects, "")), Alice, Put("b"), false),
        (Some(statement("Deny", &user(ALICE), "s3:PutObject", objects, "")), Alice, Get("a"), true),
        (Some(statement("Deny", &anyone, "s3:PutObject", objects, "")), Root, Put("b"), false),
        (Some(statement("Deny", &anyone, "s3:PutObject", objects, "")), Bob, Get("a"), false),
        (Some(statement("Deny", &anyone, "s3:*", bucket, "")), Root, GetPolicy, true),
        (Some(statement("Deny", &anyone, "s3:*", bucket, "")), Alice, GetPolicy, false),
        (Some(statement("Deny", &anyone, "s3:ListBucket", bucket, "")), Alice, List("", 10), false),
        (Some(statement("Deny", &anyone, "s3:ListBucket", bucket, "")), Alice, Get("a"), true),
        (
            Some(format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"s3:*","Resource":"{objects}"}}"#
            )),
            Alice,
            Get("a"),
            true,
        ),
        (
            Some(format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"s3:*","Resource":"{objects}"}}"#
            )),
            Root,
            Get("a"),
            false,
        ),
        (
            Some(format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{BOB}"}},"NotAction":"s3:PutObject","Resource":"{objects}"}}"#
            )),
            Bob,
            Get("a"),
            true,
        ),
        (
            Some(format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{BOB}"}},"NotAction":"s3:PutObject","Resource":"{objects}"}}"#
            )),
            Bob,
            Put("b"),
            false,
        ),
        (
            Some(format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::000000000000:root"}},"Action":"s3:GetObject","Resource":"{objects}"}}"#
            )),
            Alice,
            Get("a"),
            false,
        ),
        (
            Some(format!(
                r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::000000000000:root"}},"Action":"s3:GetObject","Resource":"{objects}"}}"#
            )),
            Root,
            Get("a"),
            true,
        ),
        (Some(NOT_PUBLIC.to_owned()), Alice, Get("a"), false),
        (Some(NOT_PUBLIC.to_owned()), Alice, Get("public/a"), true),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:PutObject",
                objects,
                &when(r#"{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}"#),
            )),
            Alice,
            Put("b"),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:PutObject",
                objects,
                &when(r#"{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}"#),
            )),
            Alice,
            PutSse("b"),
            true,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:*",
                objects,
                &when(r#"{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}"#),
            )),
            Alice,
            Get("a"),
            true,
        ),
        (
            Some(statement("Deny", &anyone, "s3:*", objects, &when(r#"{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}"#))),
            Alice,
            Get("a"),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:GetObject",
                objects,
                &when(&format!(r#"{{"StringEquals":{{"aws:PrincipalArn":"{ALICE}"}}}}"#)),
            )),
            Alice,
            Get("a"),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:GetObject",
                objects,
                &when(&format!(r#"{{"StringEquals":{{"aws:PrincipalArn":"{ALICE}"}}}}"#)),
            )),
            Root,
            Get("a"),
            true,
        ),
        (
            Some(statement(
                "Allow",
                &anyone,
                "s3:GetObject",
                objects,
                &when(r#"{"StringEquals":{"aws:PrincipalAccount":"000000000000"}}"#),
            )),
            Bob,
            Get("a"),
            true,
        ),
        (
            Some(statement(
                "Allow",
                &anyone,
                "s3:GetObject",
                objects,
                &when(r#"{"StringEquals":{"aws:PrincipalAccount":"111111111111"}}"#),
            )),
            Bob,
            Get("a"),
            false,
        ),
        (
            Some(statement(
                "Allow",
                &user(BOB),
                "s3:ListBucket",
                bucket,
                &when(r#"{"StringEquals":{"s3:prefix":"docs/"}}"#),
            )),
            Bob,
            List("docs/", 10),
            true,
        ),
        (
            Some(statement(
                "Allow",
                &user(BOB),
                "s3:ListBucket",
                bucket,
                &when(r#"{"StringEquals":{"s3:prefix":"docs/"}}"#),
            )),
            Bob,
            List("x/", 10),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:ListBucket",
                bucket,
                &when(r#"{"NumericGreaterThan":{"s3:max-keys":100}}"#),
            )),
            Alice,
            List("", 500),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:ListBucket",
                bucket,
                &when(r#"{"NumericGreaterThan":{"s3:max-keys":100}}"#),
            )),
            Alice,
            List("", 50),
            true,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:*",
                objects,
                &when(r#"{"StringNotEquals":{"s3:signatureversion":"AWS4-HMAC-SHA256"}}"#),
            )),
            Alice,
            Get("a"),
            true,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:*",
                objects,
                &when(r#"{"StringEquals":{"s3:authType":"REST-HEADER"}}"#),
            )),
            Alice,
            Get("a"),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:PutObject",
                objects,
                &when(r#"{"StringEquals":{"s3:RequestObjectTag/class":"secret"}}"#),
            )),
            Alice,
            PutTagged("t", "class=secret"),
            false,
        ),
        (
            Some(statement(
                "Deny",
                &anyone,
                "s3:PutObject",
                objects,
                &when(r#"{"StringEquals":{"s3:RequestObjectTag/class":"secret"}}"#),
            )),
            Alice,
            PutTagged("t", "class=public"),
            true,
        ),
    ];
    assert!(cases.len() >= 40);
    let mut wrong = Vec::new();
    for (i, (statements, who, op, allowed)) in cases.iter().enumerate() {
        match statements {
            Some(s) => put_policy(&root, "matrix", &policy(s)).await,
            None => drop(root.delete_bucket_policy().bucket("matrix").send().await),
        }
        if perform(client(*who), *op).await != *allowed {
            wrong.push(format!(
                "case {i}: {who:?} {op:?} should be {}; policy {statements:?}",
                if *allowed { "allowed" } else { "denied" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Unsigned requests: Block Public Access is on for every new bucket and for
/// the account by default; where both are lifted, a policy that allows
/// anyone lets anonymous callers do exactly what it allows.
#[tokio::test]
async fn anonymous_callers_reach_only_what_a_public_policy_allows_where_nothing_blocks_it() {
    let public = |bucket: &str| {
        policy(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}"#
        ))
    };
    let anonymous_get = |tern: &Deployment, bucket: &str| {
        let url = format!("{}/{bucket}/k", tern.endpoint(EAST));
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };

    let closed = one_region().await;
    let s3 = closed.s3(EAST);
    crate::bucket(&s3, "closed").await;
    put(&s3, "closed", "k").await.unwrap();
    s3.delete_public_access_block().bucket("closed").send().await.unwrap();
    let refused = s3.put_bucket_policy().bucket("closed").policy(public("closed")).send().await.unwrap_err();
    assert_eq!(code(&refused), "AccessDenied", "the account blocks public policies by default");
    assert_eq!(anonymous_get(&closed, "closed").await, 403);

    let open = open_region().await;
    let s3 = open.s3(EAST);
    for bucket in ["public", "private", "restricted"] {
        crate::bucket(&s3, bucket).await;
        put(&s3, bucket, "k").await.unwrap();
    }
    let bpa = s3.get_public_access_block().bucket("public").send().await.unwrap();
    let config = bpa.public_access_block_configuration();
    assert_eq!(config.and_then(aws_sdk_s3::types::PublicAccessBlockConfiguration::restrict_public_buckets), Some(true));
    s3.delete_public_access_block().bucket("public").send().await.unwrap();
    let gone = s3.get_public_access_block().bucket("public").send().await.unwrap_err();
    assert_eq!((code(&gone).as_str(), status(&gone)), ("NoSuchPublicAccessBlockConfiguration", 404));
    put_policy(&s3, "public", &public("public")).await;
    assert_eq!(anonymous_get(&open, "public").await, 200, "what the policy allows anyone");
    let anonymous_put = reqwest::Client::new().put(format!("{}/public/new", open.endpoint(EAST))).body("x").send();
    assert_eq!(anonymous_put.await.unwrap().status().as_u16(), 403, "and nothing else");
    assert_eq!(anonymous_get(&open, "private").await, 403, "a bucket without a policy lets no one in");

    let only_restrict = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
        .restrict_public_buckets(true)
        .block_public_policy(false)
        .build();
    s3.put_public_access_block()
        .bucket("restricted")
        .public_access_block_configuration(only_restrict)
        .send()
        .await
        .unwrap();
    put_policy(&s3, "restricted", &public("restricted")).await;
    assert_eq!(anonymous_get(&open, "restricted").await, 403, "RestrictPublicBuckets keeps anonymous callers out");
}

/// What AWS counts as public: anyone (or everyone but some, with
/// `NotPrincipal`) unless a condition pins who or where; a condition that
/// always holds pins nothing.
#[tokio::test]
async fn block_public_policy_sees_through_not_principal_and_conditions_that_always_hold() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "bpp").await;
    let refused = [
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bpp/*"}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpp/*","Condition":{"Bool":{"aws:SecureTransport":["true","false"]}}}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpp/*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpp/*","Condition":{"StringLike":{"aws:PrincipalAccount":"*"}}}"#,
    ];
    for statement in refused {
        let err = s3.put_bucket_policy().bucket("bpp").policy(policy(statement)).send().await.unwrap_err();
        assert_eq!(code(&err), "AccessDenied", "public: {statement}");
    }
    let pinned = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpp/*","Condition":{"StringEquals":{"aws:PrincipalAccount":"000000000000"}}}"#;
    put_policy(&s3, "bpp", &policy(pinned)).await;
}

/// `DeleteObjects` reads the bucket policy for every key, as `DeleteObject` does.
#[tokio::test]
async fn delete_objects_honours_the_bucket_policy() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "keep").await;
    for key in ["a", "b"] {
        put(&s3, "keep", key).await.unwrap();
    }
    put_policy(
        &s3,
        "keep",
        &policy(r#"{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::keep/a"}"#),
    )
    .await;
    let objects = ["a", "b"].map(|k| aws_sdk_s3::types::ObjectIdentifier::builder().key(k).build().unwrap());
    let delete = aws_sdk_s3::types::Delete::builder().set_objects(Some(objects.to_vec())).build().unwrap();
    let out = s3.delete_objects().bucket("keep").delete(delete).send().await.unwrap();
    let refused: Vec<_> =
        out.errors().iter().map(|e| (e.key().unwrap_or_default(), e.code().unwrap_or_default())).collect();
    assert_eq!(refused, [("a", "AccessDenied")]);
    assert_eq!(out.deleted().iter().filter_map(|d| d.key()).collect::<Vec<_>>(), ["b"]);
}

/// `aws:userid` is the user's unique id (and the account id for the root),
/// as AWS documents it.
#[tokio::test]
async fn aws_userid_names_the_user_by_its_unique_id() {
    let tern = one_region().await;
    let root = tern.s3(EAST);
    crate::bucket(&root, "ids").await;
    put(&root, "ids", "k").await.unwrap();
    let everything = policy(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#);
    let dana = tern.user("dana", &everything).await.unwrap();
    let answer =
        tern.iam_call(EAST, &[("Action", "GetUser"), ("Version", "2010-05-08"), ("UserName", "dana")]).await.unwrap();
    let id = answer.split("<UserId>").nth(1).and_then(|rest| rest.split('<').next()).unwrap().to_owned();
    assert!(id.starts_with("AIDA"), "{answer}");
    put_policy(&root, "ids", &policy(&format!(
        r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::ids/*","Condition":{{"StringEquals":{{"aws:userid":["{id}","111111111111"]}}}}}}"#
    ))).await;
    let denied = tern.s3_as(&dana, EAST).get_object().bucket("ids").key("k").send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDenied");
    assert!(root.get_object().bucket("ids").key("k").send().await.is_ok(), "the root's userid is its account id");
}

/// `s3:ExistingObjectTag/<key>`: the tags of the object a request reads,
/// in bucket policies and identity policies alike.
#[tokio::test]
async fn existing_object_tags_decide_in_either_policy() {
    let tern = one_region().await;
    let root = tern.s3(EAST);
    crate::bucket(&root, "tagged").await;
    for (key, tags) in [("secret", "class=secret"), ("open", "class=public&team=blue"), ("plain", "")] {
        let put = root.put_object().bucket("tagged").key(key).body(ByteStream::from_static(b"x"));
        put.tagging(tags).send().await.unwrap();
    }
    put_policy(
        &root,
        "tagged",
        &policy(
            r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::tagged/*",
            "Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"secret"}}}"#,
        ),
    )
    .await;
    let get = |s3: &Client, key: &'static str| {
        let s3 = s3.clone();
        async move { s3.get_object().bucket("tagged").key(key).send().await.map(drop).map_err(|e| code(&e)) }
    };
    assert_eq!(get(&root, "secret").await, Err("AccessDenied".to_owned()), "the bucket policy reads the object's tags");
    assert_eq!(get(&root, "open").await, Ok(()));
    let blue_only = policy(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
        "Condition":{"StringEquals":{"s3:ExistingObjectTag/team":"blue"}}}"#,
    );
    let blue = tern.s3_as(&tern.user("blue", &blue_only).await.unwrap(), EAST);
    assert_eq!(get(&blue, "open").await, Ok(()), "an identity policy reads them too");
    assert_eq!(get(&blue, "plain").await, Err("AccessDenied".to_owned()));
}

/// A tag change replicates only if the role may read the tags at the
/// source: the worker reads them through the source's S3 API, so the
/// source bucket's policy decides too.
#[tokio::test]
async fn a_source_bucket_policy_can_stop_tag_changes_from_replicating() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "tg-src", EAST).await;
    versioned(&west, "tg-dst", WEST).await;
    let actions =
        r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","s3:GetObjectVersionTagging","s3:ReplicateTags"]"#;
    let role = tern.replication_role(EAST, "tg", actions).await.expect("role created");
    replicate(&east, "tg-src", &role, vec![rule("all", 1, "", "tg-dst")]).await;
    put(&east, "tg-src", "k").await.unwrap();
    assert_eq!(settled(&east, "tg-src", "k").await, Some(ReplicationStatus::Completed));
    put_policy(&east, "tg-src", &policy(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{role}"}},"Action":"s3:GetObjectVersionTagging","Resource":"arn:aws:s3:::tg-src/*"}}"#
    ))).await;
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("a").value("1").build().unwrap())
        .build()
        .unwrap();
    east.put_object_tagging().bucket("tg-src").key("k").tagging(tags).send().await.unwrap();
    assert_eq!(settled(&east, "tg-src", "k").await, Some(ReplicationStatus::Failed));
    let report = status_report(&tern, "tg-src");
    assert_eq!(report["failed"][0]["reason"], "SrcGetTaggingNotPermitted", "{report}");
}
