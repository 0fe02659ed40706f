//! IAM: privilege escalation through a parameter the action does not take
//! (finding 1), the internal snapshot through a follower (3), policies that
//! failed open (14) and unbounded inline policies (16).

use super::{error_code, policy, user_allowed};
use crate::{EAST, WEST, two_regions};

fn get_user_policy(name: &str) -> [(&'static str, String); 4] {
    [
        ("Action", "GetUserPolicy".to_owned()),
        ("Version", "2010-05-08".to_owned()),
        ("UserName", name.to_owned()),
        ("PolicyName", "stolen".to_owned()),
    ]
}

/// Finding 1: a user allowed `iam:*` only on `role/app-*` added
/// `RoleName=app-x` to `PutUserPolicy` and `CreateAccessKey` for another
/// user, and became an administrator, through either region.
#[tokio::test]
async fn a_role_name_added_to_a_user_action_authorizes_nothing() {
    let tern = two_regions().await;
    let roles_only = user_allowed(&tern, "role-admin", &["iam:*"], "arn:aws:iam::000000000000:role/app-*").await;
    tern.user(
        "victim",
        &policy(&serde_json::json!([{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}])),
    )
    .await
    .unwrap();
    let everything = policy(&serde_json::json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]));
    tern.wait_until_known(WEST, &roles_only).await.unwrap();
    for region in [EAST, WEST] {
        let escalate = [
            ("Action", "PutUserPolicy"),
            ("Version", "2010-05-08"),
            ("UserName", "role-admin"),
            ("RoleName", "app-x"),
            ("PolicyName", "stolen"),
            ("PolicyDocument", everything.as_str()),
        ];
        let answer = tern.iam_as(&roles_only, region, &escalate).await.unwrap();
        assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "AccessDenied"), "{region}");
        let keys =
            [("Action", "CreateAccessKey"), ("Version", "2010-05-08"), ("UserName", "victim"), ("RoleName", "app-x")];
        let answer = tern.iam_as(&roles_only, region, &keys).await.unwrap();
        assert_eq!(answer.status, 403, "{region}: {}", answer.text());
    }
    let stolen = get_user_policy("role-admin");
    let stolen: Vec<(&str, &str)> = stolen.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = tern.iam_as(&tern.root(), EAST, &stolen).await.unwrap();
    assert_eq!(error_code(&answer.text()), "NoSuchEntity", "no policy was written");
    let listed =
        tern.iam_call(EAST, &[("Action", "ListAccessKeys"), ("Version", "2010-05-08"), ("UserName", "victim")]);
    assert_eq!(listed.await.unwrap().matches("<AccessKeyId>").count(), 1, "no key was made for the victim but its own");

    // What the policy does allow still works: the role named by RoleName.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let create = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", "app-x"),
        ("AssumeRolePolicyDocument", trust),
    ];
    assert_eq!(tern.iam_as(&roles_only, WEST, &create).await.unwrap().status, 200);
}

/// Finding 3: a user with only `s3:GetObject` asked the follower region for
/// the root-only IAM snapshot, which the follower forwarded with root
/// credentials.
#[tokio::test]
async fn internal_iam_actions_are_not_part_of_the_public_api() {
    let tern = two_regions().await;
    let reader = user_allowed(&tern, "reader", &["s3:GetObject"], "*").await;
    tern.wait_until_known(WEST, &reader).await.unwrap();
    let snapshot =
        [("Action", "TernSnapshot"), ("Since", "0"), ("PublicKey", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")];
    for (who, creds) in [("a user", &reader), ("the root", &tern.root())] {
        for region in [EAST, WEST] {
            let answer = tern.iam_as(creds, region, &snapshot).await.unwrap();
            assert_ne!(answer.status, 200, "{who} in {region}");
            assert!(answer.text().contains("<Code>"), "{who} in {region}: an IAM error, not a snapshot");
        }
    }
    // The internal route itself is the regions' alone.
    let body = br#"{"Follower":"eu-west-1","Epoch":"","Since":0,"Recipient":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","Nonce":"00"}"#;
    let answer = tern.call_as(&reader, EAST, "iam", ("POST", "/_tern/iam/snapshot"), &[], body.to_vec()).await.unwrap();
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "AccessDenied"));
    // A caller cannot name someone else for a forwarded call either.
    let headers =
        [("x-tern-caller", "arn:aws:iam::000000000000:root"), ("content-type", "application/x-www-form-urlencoded")];
    let forged = tern
        .call_as(
            &reader,
            EAST,
            "iam",
            ("POST", "/_tern/iam/forward"),
            &headers,
            b"Action=CreateUser&UserName=x".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 403);
}

/// Finding 14: a misspelled `Condtion` granted access unconditionally, and
/// `aws:SecureTransport` was never set, so denying insecure transport denied
/// nothing. The class: anything Tern would read as never matching.
#[tokio::test]
async fn policies_fail_closed() {
    let tern = two_regions().await;
    let misspelled = serde_json::json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
        "Condtion": {"Bool": {"aws:SecureTransport": "true"}}}]);
    let refused = tern.user("typo", &policy(&misspelled)).await.unwrap_err().to_string();
    assert!(refused.contains("MalformedPolicyDocument") && refused.contains("Condtion"), "{refused}");

    let insecure_denied = serde_json::json!([
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]);
    let tls_only = tern.user("tls-only", &policy(&insecure_denied)).await.unwrap();
    let err = super::s3_as(&tern, EAST, &tls_only).list_buckets().send().await.unwrap_err();
    assert_eq!(crate::code(&err), "AccessDenied", "plain HTTP is insecure transport");

    // A condition on a key Tern never sets may narrow an Allow, never anything else.
    let silent_deny = serde_json::json!([{"Effect": "Deny", "Action": "s3:*", "Resource": "*",
        "Condition": {"IpAddress": {"aws:VpcSourceIp": "10.0.0.0/8"}}}]);
    assert!(tern.user("vpc", &policy(&silent_deny)).await.unwrap_err().to_string().contains("MalformedPolicyDocument"));
    let ignored_key = serde_json::json!([{"Effect": "Deny", "Action": "s3:*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}]);
    let refused = tern.user("vpc2", &policy(&ignored_key)).await.unwrap_err().to_string();
    assert!(refused.contains("aws:sourcevpc"), "{refused}");

    // Taken literally, a policy variable never matches: this Deny would deny nothing.
    let variable =
        serde_json::json!([{"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"}]);
    let refused = tern.user("homed", &policy(&variable)).await.unwrap_err().to_string();
    assert!(refused.contains("MalformedPolicyDocument") && refused.contains("variables"), "{refused}");
}

/// Puts the inline policy `more` of user `big`.
async fn put_more(tern: &tern_testkit::Deployment, document: &str) -> tern_testkit::Answer {
    let params = [
        ("Action", "PutUserPolicy"),
        ("Version", "2010-05-08"),
        ("UserName", "big"),
        ("PolicyName", "more"),
        ("PolicyDocument", document),
    ];
    tern.iam_as(&tern.root(), WEST, &params).await.unwrap()
}

/// Finding 16: inline policies of any size were accepted and parsed on
/// every request. AWS's quotas: 2,048 characters per user, 10,240 per role.
#[tokio::test]
async fn inline_policies_stay_within_aws_quotas() {
    let tern = two_regions().await;
    tern.user("big", &policy(&serde_json::json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])))
        .await
        .unwrap();
    let resources: Vec<String> = (0..100).map(|i| format!("arn:aws:s3:::bucket-{i}/*")).collect();
    let large = policy(&serde_json::json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resources}]));
    let answer = put_more(&tern, &large).await;
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (409, "LimitExceeded"), "{}", answer.text());
    assert!(answer.text().contains("2048"));
    // Whitespace does not count, as on AWS.
    let spaced = policy(&serde_json::json!([{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]))
        .replace(',', ",          ");
    assert_eq!(put_more(&tern, &spaced).await.status, 200);
}

/// `aws:SourceIp` is set on every service's requests, IAM calls a follower
/// forwards included, so a Deny on it applies everywhere rather than
/// silently where Tern would leave the key out.
#[tokio::test]
async fn source_ip_conditions_apply_to_every_service() {
    let tern = two_regions().await;
    let everything_but_from_here = serde_json::json!([
        {"Effect": "Allow", "Action": ["s3:*", "kms:*", "iam:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["s3:*", "kms:*", "iam:*"], "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
    ]);
    let user = tern.user("local", &policy(&everything_but_from_here)).await.unwrap();
    tern.wait_until_known(WEST, &user).await.unwrap();
    let s3 = super::s3_as(&tern, EAST, &user).list_buckets().send().await.unwrap_err();
    assert_eq!(crate::code(&s3), "AccessDenied");
    let kms = tern.kms_as(&user, EAST, "CreateKey", "{}").await.unwrap();
    assert!(kms.status == 400 && kms.text().contains("AccessDeniedException"), "{}", kms.text());
    for region in [EAST, WEST] {
        let iam = tern.iam_as(&user, region, &[("Action", "ListUsers"), ("Version", "2010-05-08")]).await.unwrap();
        assert_eq!(iam.status, 403, "{region}: {}", iam.text());
    }
    let elsewhere = serde_json::json!([
        {"Effect": "Allow", "Action": ["s3:*", "kms:*", "iam:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["s3:*", "kms:*", "iam:*"], "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}},
    ]);
    let other = tern.user("remote", &policy(&elsewhere)).await.unwrap();
    tern.wait_until_known(WEST, &other).await.unwrap();
    assert!(super::s3_as(&tern, EAST, &other).list_buckets().send().await.is_ok());
    let iam = tern.iam_as(&other, WEST, &[("Action", "ListUsers"), ("Version", "2010-05-08")]).await.unwrap();
    assert_eq!(iam.status, 200, "{}", iam.text());
}
