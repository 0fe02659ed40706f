//! Replica delivery (finding 8): any caller with `s3:ReplicateObject`
//! (which `s3:*` includes) wrote "replicas" with forged version ids and
//! dates, and a forged sealed manifest could name another bucket's blob.

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use serde_json::json;

use super::{error_code, policy};
use crate::replication::versioned;
use crate::{EAST, one_region};

#[tokio::test]
async fn only_s3_replication_delivers_replicas() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "target", EAST).await;
    let put = tern.s3(EAST).put_object().bucket("target").key("secret/s.txt").body(ByteStream::from_static(b"real"));
    let real = put.send().await.unwrap();
    let everything = json!([
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::target/secret/*"},
    ]);
    let user = tern.user("forger", &policy(&everything)).await.unwrap();
    let forged = json!({
        "version_id": "forged-version", "modified_ms": 4_102_444_800_000_i64, "etag": "0123", "is_delete_marker": false,
        "size": 6, "attrs": {"replication_status": "REPLICA"}, "tags": [], "replica_kms_key_id": null,
    });
    let manifest = base64::engine::general_purpose::STANDARD.encode(forged.to_string());
    let headers = [("x-tern-replica", manifest.as_str())];
    for (who, creds) in [("a user with s3:*", &user), ("the root", &tern.root())] {
        for route in [
            "/_tern/replicate/target/secret/s.txt",
            "/_tern/replicate-blob/target/secret/s.txt",
            "/_tern/replicate-tags/target/secret/s.txt",
        ] {
            let answer = tern.call_as(creds, EAST, "s3", ("PUT", route), &headers, b"forged".to_vec()).await.unwrap();
            assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "AccessDenied"), "{who} {route}");
        }
    }
    let current = tern.s3(EAST).get_object().bucket("target").key("secret/s.txt").send().await.unwrap();
    assert_eq!(current.version_id(), real.version_id(), "the real version is still current");
    assert_eq!(current.body.collect().await.unwrap().into_bytes().as_ref(), b"real");
}
