//! The audit trail: a scripted sequence of KMS, IAM, STS and bucket calls
//! made with stock clients produces exactly the expected records, read back
//! with `tern audit`; no secret or plaintext used reaches the files; and
//! `tern audit verify` fails once one byte of one record is changed.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tern_testkit::raw::Answer;
use tern_testkit::{Creds, Deployment};

use crate::{EAST, one_region};

const PLAINTEXT: &[u8] = b"the-audited-plaintext-4711";
const OBJECT_BODY: &[u8] = b"audited-object-body-0815";
const BUCKET: &str = "audited-bucket";
const USER_ARN: &str = "arn:aws:iam::000000000000:user/auditee";
const ROOT_ARN: &str = "arn:aws:iam::000000000000:root";
const SESSION_ARN: &str = "arn:aws:sts::000000000000:assumed-role/audited-role/audit-session";

fn tern_audit(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tern")).arg("audit").args(args).output().expect("tern audit runs")
}

fn xml_leaf(body: &str, name: &str) -> String {
    let start = body.find(&format!("<{name}>")).expect(name) + name.len() + 2;
    body[start..start + body[start..].find('<').expect("closed")].to_owned()
}

/// What the test compares of each record: service, event, error, caller, via.
fn outline(record: &Value) -> (String, String, String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let source = text(&record["eventSource"]).trim_end_matches(".amazonaws.com").to_owned();
    let identity = &record["userIdentity"];
    (
        source,
        text(&record["eventName"]),
        text(&record["errorCode"]),
        text(&identity["arn"]),
        text(&identity["invokedBy"]),
    )
}

fn expected(rows: &[(&str, &str, &str, &str, &str)]) -> Vec<(String, String, String, String, String)> {
    rows.iter().map(|(a, b, c, d, e)| ((*a).into(), (*b).into(), (*c).into(), (*d).into(), (*e).into())).collect()
}

async fn assume_role(tern: &Deployment, user: &Creds) -> (Creds, Answer) {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let body = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=audit-session&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Faudited-role";
    let answer = tern.call_as(user, EAST, "sts", ("POST", "/"), &headers, body.into()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    let session = Creds {
        access_key: xml_leaf(&text, "AccessKeyId"),
        secret: xml_leaf(&text, "SecretAccessKey"),
        token: Some(xml_leaf(&text, "SessionToken")),
    };
    (session, answer)
}

/// What the scripted calls used and made.
struct Scripted {
    key: String,
    user: Creds,
    session: Creds,
    /// The `AssumeRole` answer, as the caller received it.
    assumed: String,
    /// Everything that must never reach the trail.
    secrets: Vec<String>,
    /// The `x-amz-request-id` the root's `PutBucketPolicy` was answered with.
    policy_request_id: String,
}

/// KMS, as the root: the key, and a use of each kind.
async fn kms_calls(tern: &Deployment, secrets: &mut Vec<String>) -> String {
    let kms = tern.kms(EAST);
    let key = kms.create_key().description("audited").send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let blob = kms.encrypt().key_id(&key).plaintext(Blob::new(PLAINTEXT)).send().await.unwrap();
    let blob = blob.ciphertext_blob.unwrap();
    kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap();
    let data_key = kms.generate_data_key().key_id(&key).key_spec(DataKeySpec::Aes256).send().await.unwrap();
    secrets.push(STANDARD.encode(blob.as_ref()));
    secrets.push(STANDARD.encode(data_key.plaintext.unwrap().as_ref()));
    secrets.push(STANDARD.encode(data_key.ciphertext_blob.unwrap().as_ref()));
    key
}

/// IAM and STS: a user, a role it may assume, and a session of it.
async fn identity_calls(tern: &Deployment, secrets: &mut Vec<String>) -> (Creds, Creds, String) {
    let allow_list =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    let user = tern.user("auditee", allow_list).await.unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{USER_ARN}"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let create_role = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", "audited-role"),
        ("AssumeRolePolicyDocument", trust.as_str()),
    ];
    tern.iam_call(EAST, &create_role).await.unwrap();
    let (session, assumed) = assume_role(tern, &user).await;
    secrets.extend([user.secret.clone(), session.secret.clone(), session.token.clone().unwrap()]);
    (user, session, assumed.text())
}

fn deny_without_tls() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::{BUCKET}/*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}},"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}}}}}}]}}"#
    )
}

/// Bucket configuration, S3 calling KMS for an SSE-KMS object, and an
/// SSE-C object whose key must not reach the trail either.
async fn bucket_calls(tern: &Deployment, key: &str, secrets: &mut Vec<String>) -> String {
    let s3 = tern.s3(EAST);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let by_default =
        ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::AwsKms).kms_master_key_id(key);
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default.build().unwrap());
    let encryption = ServerSideEncryptionConfiguration::builder().rules(rule.build()).build().unwrap();
    s3.put_bucket_encryption().bucket(BUCKET).server_side_encryption_configuration(encryption).send().await.unwrap();
    s3.put_object().bucket(BUCKET).key("o").body(ByteStream::from_static(OBJECT_BODY)).send().await.unwrap();
    let read = s3.get_object().bucket(BUCKET).key("o").send().await.unwrap().body.collect().await.unwrap();
    assert_eq!(read.into_bytes().as_ref(), OBJECT_BODY);
    let policy = s3.put_bucket_policy().bucket(BUCKET).policy(deny_without_tls()).send().await.unwrap();
    let request_id = aws_sdk_s3::operation::RequestId::request_id(&policy).expect("x-amz-request-id").to_owned();
    let customer_key = [0x5a_u8; 32];
    secrets.push(STANDARD.encode(customer_key));
    let key_md5 = STANDARD.encode(<md5::Md5 as md5::Digest>::digest(customer_key));
    s3.put_object()
        .bucket(BUCKET)
        .key("c")
        .body(ByteStream::from_static(OBJECT_BODY))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(STANDARD.encode(customer_key))
        .sse_customer_key_md5(key_md5)
        .send()
        .await
        .unwrap();
    request_id
}

/// Refusals are recorded too, with the caller who was refused.
async fn refused_calls(tern: &Deployment, key: &str, user: &Creds, session: &Creds) {
    let as_user = tern_testkit::s3_client(&tern.endpoint(EAST), EAST, &user.access_key, &user.secret);
    let refused = as_user.put_bucket_policy().bucket(BUCKET).policy(deny_without_tls()).send().await.unwrap_err();
    assert_eq!(crate::code(&refused), "AccessDenied");
    let describe = format!(r#"{{"KeyId":"{key}"}}"#);
    assert_eq!(tern.kms_as(user, EAST, "DescribeKey", &describe).await.unwrap().status, 400);
    let encrypt = format!(r#"{{"KeyId":"{key}","Plaintext":"{}"}}"#, STANDARD.encode(PLAINTEXT));
    let by_session = tern.kms_as(session, EAST, "Encrypt", &encrypt).await.unwrap();
    assert_eq!(by_session.status, 400, "{}", by_session.text());
}

async fn script(tern: &Deployment) -> Scripted {
    let mut secrets: Vec<String> = vec![tern.root().secret, STANDARD.encode(PLAINTEXT)];
    secrets.extend([PLAINTEXT, OBJECT_BODY].map(|bytes| String::from_utf8(bytes.to_vec()).unwrap()));
    let key = kms_calls(tern, &mut secrets).await;
    let (user, session, assumed) = identity_calls(tern, &mut secrets).await;
    let policy_request_id = bucket_calls(tern, &key, &mut secrets).await;
    refused_calls(tern, &key, &user, &session).await;
    Scripted { key, user, session, assumed, secrets, policy_request_id }
}

/// Every record, in order, and what an investigator asks of some.
fn check_records(records: &[Value], scripted: &Scripted) {
    let s3_invoked = "s3.amazonaws.com";
    assert_eq!(
        records.iter().map(outline).collect::<Vec<_>>(),
        expected(&[
            ("kms", "CreateKey", "", ROOT_ARN, ""),
            ("kms", "Encrypt", "", ROOT_ARN, ""),
            ("kms", "Decrypt", "", ROOT_ARN, ""),
            ("kms", "GenerateDataKey", "", ROOT_ARN, ""),
            ("iam", "CreateUser", "", ROOT_ARN, ""),
            ("iam", "PutUserPolicy", "", ROOT_ARN, ""),
            ("iam", "CreateAccessKey", "", ROOT_ARN, ""),
            ("iam", "CreateRole", "", ROOT_ARN, ""),
            ("sts", "AssumeRole", "", USER_ARN, ""),
            ("s3", "CreateBucket", "", ROOT_ARN, ""),
            ("s3", "PutBucketEncryption", "", ROOT_ARN, ""),
            ("kms", "GenerateDataKey", "", ROOT_ARN, s3_invoked),
            ("kms", "Decrypt", "", ROOT_ARN, s3_invoked),
            ("s3", "PutBucketPolicy", "", ROOT_ARN, ""),
            ("s3", "PutBucketPolicy", "AccessDenied", USER_ARN, ""),
            ("kms", "DescribeKey", "AccessDeniedException", USER_ARN, ""),
            ("kms", "Encrypt", "AccessDeniedException", SESSION_ARN, ""),
        ])
    );
    let assumed = &records[8];
    assert_eq!(assumed["requestID"], xml_leaf(&scripted.assumed, "RequestId"));
    assert_eq!(assumed["responseElements"]["credentials"]["accessKeyId"], scripted.session.access_key.as_str());
    assert_eq!(assumed["userIdentity"]["accessKeyId"], scripted.user.access_key.as_str());
    let by_session = &records[16]["userIdentity"];
    assert_eq!(by_session["type"], "AssumedRole");
    assert_eq!(by_session["sessionContext"]["sessionIssuer"]["arn"], "arn:aws:iam::000000000000:role/audited-role");
    assert_eq!(records[11]["sourceIPAddress"], s3_invoked);
    assert_eq!(records[11]["requestParameters"]["encryptionContext"]["aws:s3:arn"], format!("arn:aws:s3:::{BUCKET}/o"));
    let kms_records = records.iter().filter(|r| r["eventSource"] == "kms.amazonaws.com");
    assert_eq!(kms_records.clone().count(), 8);
    assert!(kms_records.clone().all(|r| r["resources"][0]["ARN"] == scripted.key.as_str()));
    assert_eq!(records[13]["requestParameters"]["bucketPolicy"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(records[13]["requestID"], scripted.policy_request_id.as_str(), "the id S3 answered with");
    assert_eq!(records[0]["sourceIPAddress"], "127.0.0.1");
}

#[tokio::test]
async fn a_scripted_sequence_leaves_exactly_its_records_and_no_secret() {
    let mut tern = one_region().await;
    let scripted = script(&tern).await;
    // A clean stop closes the file with its digest.
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());
    let config = tern.config_path();
    let config = config.to_str().unwrap();
    let listed = tern_audit(&["--config", config, "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&listed.stdout).unwrap().lines().collect();
    let records: Vec<Value> = lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
    check_records(&records, &scripted);

    // Who used this key? Everyone above who did, and nobody else.
    let key_users = tern_audit(&["--config", config, "--key", &scripted.key, "--json"]);
    assert_eq!(String::from_utf8_lossy(&key_users.stdout).lines().count(), 8);
    let by_role = tern_audit(&["--config", config, "--principal", "arn:aws:iam::000000000000:role/audited-role"]);
    assert_eq!(String::from_utf8_lossy(&by_role.stdout).lines().count(), 1);
    let since = tern_audit(&["--config", config, "--since", "1h", "--event", "AssumeRole", "--json"]);
    assert_eq!(String::from_utf8_lossy(&since.stdout).lines().collect::<Vec<_>>(), [lines[8]]);

    // No secret, plaintext or key used above is anywhere in the trail.
    let dir = tern.data_dir().join(EAST).join("audit");
    let mut trail = String::new();
    for file in std::fs::read_dir(&dir).unwrap() {
        trail.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
    }
    assert!(trail.contains(&scripted.key), "the trail was read");
    for secret in &scripted.secrets {
        assert!(!trail.contains(secret.as_str()), "the audit trail holds a secret: {secret}");
    }

    // Verified as written; one byte changed fails it.
    let verified = tern_audit(&["verify", "--config", config]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("verified 1 file(s), 17 record(s)"));
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"eventName\":\"DescribeKey\"", "\"eventName\":\"DescribeKeys\"", 1)).unwrap();
    let tampered = tern_audit(&["verify", "--config", config]);
    assert!(!tampered.status.success());
    let report = String::from_utf8_lossy(&tampered.stdout);
    assert!(report.contains("FAILED") && report.contains(":17: the line is not the one sealed here"), "{report}");
}

#[tokio::test]
async fn an_acknowledged_change_survives_kill_9_and_the_trail_goes_on() {
    let mut tern = one_region().await;
    let first = tern.kms(EAST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    // No chance to close the file: the record must already be on disk.
    tern.restart().await.unwrap();
    let second = tern.kms(EAST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());

    let config = tern.config_path();
    let config = config.to_str().unwrap();
    let created = tern_audit(&["--config", config, "--event", "CreateKey", "--json"]);
    let created = String::from_utf8_lossy(&created.stdout).into_owned();
    let keys: Vec<String> = created
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["responseElements"]["keyMetadata"]["KeyId"].to_string()
        })
        .collect();
    assert_eq!(keys, [format!("\"{first}\""), format!("\"{second}\"")]);
    let verified = tern_audit(&["verify", "--config", config]);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success() && report.contains("verified 2 file(s), 2 record(s)"), "{report}");
    let dir = tern.data_dir().join(EAST).join("audit");
    let crashed = std::fs::read_to_string(dir.join("audit-00000001.jsonl")).unwrap();
    assert!(crashed.lines().last().unwrap().contains(r#""reason":"recovered""#), "{crashed}");
}

#[tokio::test]
async fn an_iam_change_forwarded_to_the_authority_is_in_both_trails() {
    let mut tern = crate::two_regions().await;
    let create = [("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", "forwarded")];
    tern.iam_call(crate::WEST, &create).await.unwrap();
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());
    let config = tern.config_path();
    let records = |region: &str| -> Vec<Value> {
        let listed = tern_audit(&["--config", config.to_str().unwrap(), "--region", region, "--json"]);
        String::from_utf8_lossy(&listed.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    };
    let (west, east) = (records(crate::WEST), records(EAST));
    assert_eq!(west.iter().map(outline).collect::<Vec<_>>(), expected(&[("iam", "CreateUser", "", ROOT_ARN, "")]));
    assert_eq!(west[0]["sourceIPAddress"], "127.0.0.1");
    assert_eq!(east.iter().map(outline).collect::<Vec<_>>(), expected(&[("iam", "CreateUser", "", ROOT_ARN, "")]));
    assert_eq!(east[0]["additionalEventData"]["forwardedBy"], crate::WEST);
    assert_eq!(east[0]["sourceIPAddress"], "127.0.0.1", "the address the follower was called from");
    assert_eq!(east[0]["requestParameters"]["userName"], "forwarded");
}

#[tokio::test]
async fn s3_assuming_a_replication_role_is_recorded_as_the_service() {
    use crate::replication::{READ_AND_REPLICATE, replicate, rule, settled, versioned};
    let mut tern = crate::two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(crate::WEST));
    versioned(&east, "audited-src", EAST).await;
    versioned(&west, "audited-dst", crate::WEST).await;
    let role = tern.replication_role(EAST, "audited-crr", READ_AND_REPLICATE).await.unwrap();
    replicate(&east, "audited-src", &role, vec![rule("all", 1, "", "audited-dst")]).await;
    for key in ["a", "b"] {
        east.put_object().bucket("audited-src").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
        assert_eq!(settled(&east, "audited-src", key).await, Some(aws_sdk_s3::types::ReplicationStatus::Completed));
    }
    assert!(tern.stop().await.unwrap().success(), "{}", tern.log());
    let config = tern.config_path();
    let listed = tern_audit(&["--config", config.to_str().unwrap(), "--event", "AssumeRole", "--json"]);
    let records: Vec<Value> =
        String::from_utf8_lossy(&listed.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 1, "one session serves both objects: {records:?}");
    let assumed = &records[0];
    assert_eq!(assumed["awsRegion"], EAST);
    assert_eq!(assumed["userIdentity"]["type"], "AWSService");
    assert_eq!(assumed["userIdentity"]["invokedBy"], "s3.amazonaws.com");
    assert_eq!(assumed["sourceIPAddress"], "s3.amazonaws.com");
    assert_eq!(assumed["requestParameters"]["roleArn"], role.as_str());
    assert_eq!(assumed["resources"][0]["ARN"], role.as_str());
    let session_key = assumed["responseElements"]["credentials"]["accessKeyId"].as_str().unwrap();
    assert!(session_key.starts_with("ASIA"), "a session's key, never its secret: {session_key}");
    assert!(assumed["responseElements"]["credentials"].get("sessionToken").is_none());
}

#[tokio::test]
async fn a_kms_body_the_record_could_not_show_is_refused() {
    let tern = one_region().await;
    let key = tern.kms(EAST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    // A lone surrogate in a member KMS would skip unread.
    let body = format!(r#"{{"KeyId":"{key}","Zz":"\ud800"}}"#);
    let answer = tern.kms_as(&tern.root(), EAST, "DescribeKey", &body).await.unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("SerializationException"), "{}", answer.text());
}
