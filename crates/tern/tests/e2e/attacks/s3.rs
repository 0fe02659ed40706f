//! S3 authorization: actions chosen from raw text rather than the parsed
//! request (finding 4), `DeleteObjects` authorized once per bucket (5), the
//! replication-read header from any role session (9), and the same class
//! elsewhere (tags sent with a write or copied, SSE condition keys).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use serde_json::json;
use tern_testkit::Creds;

use super::{error_code, policy, s3_as};
use crate::replication::versioned;
use crate::{EAST, code, one_region};

async fn two_versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let first = s3.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"old")).send().await.unwrap();
    s3.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"new")).send().await.unwrap();
    first.version_id().unwrap().to_owned()
}

/// Finding 4: the action was picked by looking for `versionId=` in the raw
/// query, while s3s decodes `%76ersionId=`: a user denied the version
/// actions read and permanently deleted an old version.
#[tokio::test]
async fn an_encoded_version_id_is_still_a_version_id() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "vault", EAST).await;
    let old = two_versions(&tern.s3(EAST), "vault", "doc").await;
    let rules = json!([
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:GetObjectVersionTagging"], "Resource": "*"},
    ]);
    let user = tern.user("no-versions", &policy(&rules)).await.unwrap();
    for (method, query) in
        [("GET", "%76ersionId"), ("DELETE", "%76ersionId"), ("GET", "versionId"), ("GET", "%76ersionId&tagging")]
    {
        let path = format!("/vault/doc?{query}={old}");
        let answer = tern.call_as(&user, EAST, "s3", (method, &path), &[], Vec::new()).await.unwrap();
        assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "AccessDenied"), "{method} {query}");
    }
    let kept = tern.s3(EAST).get_object().bucket("vault").key("doc").version_id(&old).send().await.unwrap();
    assert_eq!(kept.body.collect().await.unwrap().into_bytes().as_ref(), b"old", "the old version is intact");
    let current = tern.call_as(&user, EAST, "s3", ("GET", "/vault/doc"), &[], Vec::new()).await.unwrap();
    assert_eq!(current.text(), "new", "what the policy allows still works");
}

/// Finding 5: `DeleteObjects` was authorized once against the bucket; AWS
/// authorizes every key (and `s3:DeleteObjectVersion` for a version) and
/// reports refused keys as `AccessDenied` errors.
#[tokio::test]
async fn batch_deletes_authorize_every_key() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "batch", EAST).await;
    let old = two_versions(&tern.s3(EAST), "batch", "secret/protected.txt").await;
    tern.s3(EAST)
        .put_object()
        .bucket("batch")
        .key("public/x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let rules = json!([
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject*", "Resource": "arn:aws:s3:::batch/secret/*"},
    ]);
    let user = tern.user("batcher", &policy(&rules)).await.unwrap();
    let ids = [
        ObjectIdentifier::builder().key("secret/protected.txt").version_id(&old).build().unwrap(),
        ObjectIdentifier::builder().key("secret/protected.txt").build().unwrap(),
        ObjectIdentifier::builder().key("public/x").build().unwrap(),
    ];
    let delete = Delete::builder().set_objects(Some(ids.to_vec())).build().unwrap();
    let out = s3_as(&tern, EAST, &user).delete_objects().bucket("batch").delete(delete).send().await.unwrap();
    let refused: Vec<(&str, &str)> = out.errors().iter().map(|e| (e.key().unwrap(), e.code().unwrap())).collect();
    assert_eq!(refused, [("secret/protected.txt", "AccessDenied"), ("secret/protected.txt", "AccessDenied")]);
    assert_eq!(out.deleted().iter().map(|d| d.key().unwrap()).collect::<Vec<_>>(), ["public/x"]);
    let versions = tern.s3(EAST).list_object_versions().bucket("batch").prefix("secret/").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "both versions of the protected object remain");
    assert!(versions.delete_markers().is_empty());
}

/// Session credentials of `role` for `user` (who its trust policy names).
async fn assume(tern: &tern_testkit::Deployment, user: &Creds, role: &str) -> Creds {
    let params = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", role), ("RoleSessionName", "mine")];
    let body = params.iter().map(|(k, v)| format!("{k}={}", urlencoding::encode(v))).collect::<Vec<_>>().join("&");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let answer = tern.call_as(user, EAST, "sts", ("POST", "/"), &headers, body.into_bytes()).await.unwrap();
    let text = answer.text();
    let field = |tag: &str| {
        let start = text.find(&format!("<{tag}>")).unwrap_or_else(|| panic!("{text}")) + tag.len() + 2;
        text[start..start + text[start..].find('<').unwrap()].to_owned()
    };
    Creds { access_key: field("AccessKeyId"), secret: field("SecretAccessKey"), token: Some(field("SessionToken")) }
}

/// Finding 9: `x-tern-replication: true` turned any role session's `GetObject`
/// into `s3:GetObjectVersionForReplication`, bypassing a Deny on `GetObject`.
#[tokio::test]
async fn only_s3s_own_replication_sessions_read_for_replication() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "guarded", EAST).await;
    let version = two_versions(&tern.s3(EAST), "guarded", "k").await;
    let user = tern
        .user("assumer", &policy(&json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}])))
        .await
        .unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/assumer"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"},
    ]});
    tern.iam_call(
        EAST,
        &[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", "replicator"),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ],
    )
    .await
    .unwrap();
    tern.allow_role(EAST, "replicator", r#"["s3:GetObjectVersionForReplication"]"#).await.unwrap();
    let session = assume(&tern, &user, "arn:aws:iam::000000000000:role/replicator").await;
    let token = session.token.clone().unwrap();
    let headers = [("x-tern-replication", "true"), ("x-amz-security-token", token.as_str())];
    let path = format!("/guarded/k?versionId={version}");
    let answer = tern.call_as(&session, EAST, "s3", ("GET", &path), &headers, Vec::new()).await.unwrap();
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "AccessDenied"), "{}", answer.text());
}

/// The same class: tags sent with a write need `s3:PutObjectTagging`, and
/// the SSE condition keys of a write are those of its parsed headers.
#[tokio::test]
async fn writes_are_authorized_for_everything_they_carry() {
    let tern = one_region().await;
    crate::bucket(&tern.s3(EAST), "carry").await;
    let rules = json!([
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::carry/kms-only/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    ]);
    let s3 = s3_as(&tern, EAST, &tern.user("writer", &policy(&rules)).await.unwrap());
    let put = |key: &str| s3.put_object().bucket("carry").key(key).body(ByteStream::from_static(b"x"));
    assert_eq!(code(&put("tagged").tagging("team=blue").send().await.unwrap_err()), "AccessDenied");
    put("plain").send().await.unwrap();
    assert_eq!(code(&put("kms-only/a").send().await.unwrap_err()), "AccessDenied");
    put("kms-only/b").server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).send().await.unwrap();
    let tags = tern.s3(EAST).get_object_tagging().bucket("carry").key("plain").send().await.unwrap();
    assert!(tags.tag_set().is_empty());
}

/// The same class for copies: a copy takes its source's tags unless told
/// otherwise, which on AWS needs `s3:GetObjectTagging` on the source and
/// `s3:PutObjectTagging` on the copy, as tags sent with a write do.
#[tokio::test]
async fn copies_carry_tags_only_with_tag_permissions() {
    let tern = one_region().await;
    crate::bucket(&tern.s3(EAST), "copies").await;
    let root = tern.s3(EAST);
    let put = |key: &'static str| root.put_object().bucket("copies").key(key).body(ByteStream::from_static(b"x"));
    put("tagged").tagging("clearance=secret").send().await.unwrap();
    put("untagged").send().await.unwrap();
    let rules = json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"}]);
    let s3 = s3_as(&tern, EAST, &tern.user("copier", &policy(&rules)).await.unwrap());
    let copy = |from: &str, to: &str| s3.copy_object().bucket("copies").copy_source(format!("copies/{from}")).key(to);
    assert_eq!(code(&copy("tagged", "stolen").send().await.unwrap_err()), "AccessDenied");
    assert!(root.head_object().bucket("copies").key("stolen").send().await.is_err(), "nothing was copied");
    copy("untagged", "plain-copy").send().await.unwrap();
    let replace = aws_sdk_s3::types::TaggingDirective::Replace;
    copy("tagged", "untagged-copy").tagging_directive(replace).send().await.unwrap();
    let tags = root.get_object_tagging().bucket("copies").key("untagged-copy").send().await.unwrap();
    assert!(tags.tag_set().is_empty(), "a copy told to replace the tags with none has none");

    let with_tags = json!([{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging"], "Resource": "*"}]);
    let s3 = s3_as(&tern, EAST, &tern.user("tag-copier", &policy(&with_tags)).await.unwrap());
    s3.copy_object().bucket("copies").copy_source("copies/tagged").key("copy").send().await.unwrap();
    let tags = root.get_object_tagging().bucket("copies").key("copy").send().await.unwrap();
    assert_eq!(tags.tag_set().first().map(aws_sdk_s3::types::Tag::value), Some("secret"));
}

/// `GetObjectAttributes` names an object's size, `ETag`, checksum and parts:
/// as on AWS it needs `s3:GetObjectAttributes` and `s3:GetObject` both.
#[tokio::test]
async fn object_attributes_need_both_permissions() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "attrs").await;
    s3.put_object().bucket("attrs").key("k").body(ByteStream::from_static(b"secret size")).send().await.unwrap();
    let attributes = |creds: Creds| {
        let client = s3_as(&tern, EAST, &creds);
        async move {
            client
                .get_object_attributes()
                .bucket("attrs")
                .key("k")
                .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectSize)
                .send()
                .await
        }
    };
    let reader = super::user_allowed(&tern, "reader-only", &["s3:GetObject"], "*").await;
    assert_eq!(code(&attributes(reader).await.unwrap_err()), "AccessDenied");
    let lister = super::user_allowed(&tern, "attributes-only", &["s3:GetObjectAttributes"], "*").await;
    assert_eq!(code(&attributes(lister).await.unwrap_err()), "AccessDenied");
    let both = super::user_allowed(&tern, "both", &["s3:GetObject", "s3:GetObjectAttributes"], "*").await;
    assert_eq!(attributes(both).await.unwrap().object_size(), Some(11));
}

/// The route a region reads a copy's source on for another region serves
/// only the deployment's root (which only regions hold), and only for a
/// caller named in signed headers: no user reaches it, whatever it claims.
#[tokio::test]
async fn the_copy_source_route_serves_no_client() {
    let tern = crate::two_regions().await;
    crate::bucket(&tern.s3(EAST), "held").await;
    tern.s3(EAST).put_object().bucket("held").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let read = br#"{"bucket":"held","key":"k","version_id":null,"named_version":false,"conditions":{},"range":[0,1],"expect":null}"#;
    let user = super::user_allowed(&tern, "prober", &["s3:*"], "*").await;
    let named = [("x-tern-caller", "arn:aws:iam::000000000000:user/prober")];
    for (creds, headers) in [(user, &named[..]), (tern.root(), &[][..])] {
        let answer =
            tern.call_as(&creds, EAST, "s3", ("POST", "/_tern/copy-source"), headers, read.to_vec()).await.unwrap();
        assert_eq!(answer.status, 403, "{}", answer.text());
    }
}
