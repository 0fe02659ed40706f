//! KMS: aliases taken over with rights to one key only (finding 7), grants
//! that widened themselves and grants retired or revoked by anyone (10).

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use tern_testkit::{Creds, Deployment};

use super::{error_code, policy};
use crate::{EAST, one_region};

async fn kms(tern: &Deployment, creds: &Creds, operation: &str, body: &Value) -> (u16, Value) {
    let answer = tern.kms_as(creds, EAST, operation, &body.to_string()).await.unwrap();
    let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, value)
}

async fn new_key(tern: &Deployment, creds: &Creds) -> String {
    let (status, created) = kms(tern, creds, "CreateKey", &json!({})).await;
    assert_eq!(status, 200, "{created}");
    created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned()
}

/// Finding 7: `UpdateAlias` checked only the new target, so a user pointed
/// `alias/finance` (a key it could not use) and `alias/aws/s3` at its own
/// key, and the owner's next encryption went to the attacker's key.
#[tokio::test]
async fn an_alias_moves_only_with_rights_on_both_keys() {
    let tern = one_region().await;
    let root = tern.root();
    let finance = new_key(&tern, &root).await;
    kms(&tern, &root, "CreateAlias", &json!({"AliasName": "alias/finance", "TargetKeyId": finance})).await;
    crate::bucket(&tern.s3(EAST), "managed").await;
    let put = tern.s3(EAST).put_object().bucket("managed").key("k").body(ByteStream::from_static(b"x"));
    put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).send().await.unwrap();

    let create_only = json!([{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}]);
    let attacker = tern.user("hijacker", &policy(&create_only)).await.unwrap();
    let own = new_key(&tern, &attacker).await;
    let own_and_aliases = json!([
        {"Effect": "Allow", "Action": "kms:*", "Resource": [own.as_str(), "arn:aws:kms:us-east-1:000000000000:alias/*"]},
    ]);
    tern.iam_call(
        EAST,
        &[
            ("Action", "PutUserPolicy"),
            ("Version", "2010-05-08"),
            ("UserName", "hijacker"),
            ("PolicyName", "access"),
            ("PolicyDocument", &policy(&own_and_aliases)),
        ],
    )
    .await
    .unwrap();

    let (status, refused) =
        kms(&tern, &attacker, "UpdateAlias", &json!({"AliasName": "alias/finance", "TargetKeyId": own})).await;
    assert_eq!((status, refused["__type"].as_str()), (400, Some("AccessDeniedException")), "{refused}");
    let (_, refused) = kms(&tern, &attacker, "DeleteAlias", &json!({"AliasName": "alias/finance"})).await;
    assert_eq!(refused["__type"], "AccessDeniedException");
    for operation in ["UpdateAlias", "DeleteAlias"] {
        let (status, refused) =
            kms(&tern, &attacker, operation, &json!({"AliasName": "alias/aws/s3", "TargetKeyId": own})).await;
        assert_eq!(
            (status, refused["__type"].as_str()),
            (400, Some("NotAuthorizedException")),
            "{operation}: {refused}"
        );
        let (_, refused) =
            kms(&tern, &root, operation, &json!({"AliasName": "alias/aws/s3", "TargetKeyId": own})).await;
        assert_eq!(refused["__type"], "NotAuthorizedException", "not even the root changes AWS's aliases");
    }
    let (_, encrypted) =
        kms(&tern, &root, "Encrypt", &json!({"KeyId": "alias/finance", "Plaintext": "c2VjcmV0"})).await;
    assert_eq!(encrypted["KeyId"].as_str(), Some(finance.as_str()), "root's data still goes to its own key");

    // With rights on the alias and both keys, repointing works.
    let (status, _) =
        kms(&tern, &attacker, "CreateAlias", &json!({"AliasName": "alias/mine", "TargetKeyId": own})).await;
    assert_eq!(status, 200);
    let (status, _) =
        kms(&tern, &attacker, "UpdateAlias", &json!({"AliasName": "alias/mine", "TargetKeyId": own})).await;
    assert_eq!(status, 200);
}

/// Finding 10: a grantee holding only `CreateGrant` granted itself Encrypt
/// and Decrypt; `RetireGrant` by token alone asked nobody who was retiring.
#[tokio::test]
async fn grants_never_widen_and_retire_only_by_their_own_rules() {
    let tern = one_region().await;
    let root = tern.root();
    let key = new_key(&tern, &root).await;
    let nothing = json!([{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]);
    let grantee = tern.user("grantee", &policy(&nothing)).await.unwrap();
    let bystander = tern.user("bystander", &policy(&nothing)).await.unwrap();
    let grantee_arn = "arn:aws:iam::000000000000:user/grantee";
    let (status, first_grant) = kms(
        &tern,
        &root,
        "CreateGrant",
        &json!({"KeyId": key, "GranteePrincipal": grantee_arn, "Operations": ["CreateGrant"]}),
    )
    .await;
    assert_eq!(status, 200, "{first_grant}");

    let widen = json!({"KeyId": key, "GranteePrincipal": grantee_arn, "Operations": ["Encrypt", "Decrypt"]});
    let (status, refused) = kms(&tern, &grantee, "CreateGrant", &widen).await;
    assert_eq!((status, refused["__type"].as_str()), (400, Some("AccessDeniedException")), "{refused}");
    let (_, encrypted) = kms(&tern, &grantee, "Encrypt", &json!({"KeyId": key, "Plaintext": "c2VjcmV0"})).await;
    assert_eq!(encrypted["__type"], "AccessDeniedException");
    let narrow = json!({"KeyId": key, "GranteePrincipal": "arn:aws:iam::000000000000:user/bystander", "Operations": ["CreateGrant"]});
    let (status, passed_on) = kms(&tern, &grantee, "CreateGrant", &narrow).await;
    assert_eq!(status, 200, "a grant may hand on what it has: {passed_on}");

    let token = first_grant["GrantToken"].as_str().unwrap();
    let (_, refused) = kms(&tern, &bystander, "RetireGrant", &json!({"GrantToken": token})).await;
    assert_eq!(
        refused["__type"], "AccessDeniedException",
        "a token alone does not make its holder a retiring principal"
    );
    let (_, refused) =
        kms(&tern, &grantee, "RevokeGrant", &json!({"KeyId": key, "GrantId": first_grant["GrantId"]})).await;
    assert_eq!(refused["__type"], "AccessDeniedException");
    let (status, _) = kms(&tern, &root, "RetireGrant", &json!({"GrantToken": token})).await;
    assert_eq!(status, 200, "the account that made the grant retires it");
    assert_eq!(
        error_code(
            &tern.kms_as(&root, EAST, "RetireGrant", &json!({"GrantToken": token}).to_string()).await.unwrap().text()
        ),
        "InvalidGrantTokenException"
    );
}
