//! HTTPS on every listener (`tern up --tls`), and regions that talk to each
//! other over mutual TLS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ReplicationStatus;
use tern_testkit::Deployment;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

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
        ("s3", "POST", "/_tern/copy-source", vec![]),
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

/// In a network namespace of its own, a region listens on a non-loopback
/// address over plain HTTP; a request carrying an SSE-C key there is
/// refused before anything reads it (loopback listeners keep accepting
/// SSE-C, as the embedded default shows in `encryption`).
#[tokio::test]
async fn sse_c_over_plain_http_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    let listen = "192.0.2.10:9100"; // TEST-NET-1, on the namespace's own loopback device
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n[[region]]\nname = \"{EAST}\"\nlisten = \"{listen}\"\n", data.display()),
    )
    .unwrap();
    let script = r#"
        set -eu
        ip link set lo up
        ip addr add 192.0.2.10/32 dev lo
        "$TERN" up --config "$CONFIG" >"$LOG" 2>&1 &
        tern=$!
        for _ in $(seq 400); do (exec 3<>/dev/tcp/192.0.2.10/9100) 2>/dev/null && break; sleep 0.05; done
        ask() {
            exec 3<>/dev/tcp/192.0.2.10/9100
            printf "PUT /b/k HTTP/1.1\r\nHost: 192.0.2.10:9100\r\nContent-Length: 0\r\nConnection: close\r\n$1\r\n" >&3
            tr -d '\r' <&3
            exec 3>&-
        }
        ask 'x-amz-server-side-encryption-customer-algorithm: AES256\r\n'
        echo '-----'
        ask ''
        kill "$tern"
        wait "$tern" || true
    "#;
    let out = tokio::process::Command::new("timeout")
        .args(["60", "unshare", "--net", "--map-root-user", "bash", "-c", script])
        .env("TERN", env!("CARGO_BIN_EXE_tern"))
        .env("CONFIG", &config)
        .env("LOG", dir.path().join("tern.log"))
        .output()
        .await
        .expect("unshare and bash run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = std::fs::read_to_string(dir.path().join("tern.log")).unwrap_or_default();
    let (with_key, without) = text.split_once("-----").unwrap_or_else(|| panic!("{text}\n{log}"));
    assert!(with_key.starts_with("HTTP/1.1 400"), "{with_key}\n{log}");
    assert!(
        with_key.contains("<Code>InvalidRequest</Code>") && with_key.contains("must be made over a secure connection")
    );
    assert!(!without.contains("secure connection"), "only SSE-C is refused: {without}");
    assert!(without.contains("HTTP/1.1 "), "the same listener answers other requests: {without}");
}

/// Relays bytes to a target set later, keeping a copy of everything that
/// passes in either direction: what a capture of the network would see.
#[derive(Default)]
struct Wiretap {
    target: Mutex<Option<SocketAddr>>,
    seen: Mutex<Vec<u8>>,
}

impl Wiretap {
    async fn start() -> (Arc<Self>, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let tap = Arc::new(Self::default());
        let serving = Arc::clone(&tap);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Some(target) = *serving.target.lock().unwrap() else { continue };
                let Ok(server) = tokio::net::TcpStream::connect(target).await else { continue };
                let ((client_in, client_out), (server_in, server_out)) = (client.into_split(), server.into_split());
                tokio::spawn(Arc::clone(&serving).pump(client_in, server_out));
                tokio::spawn(Arc::clone(&serving).pump(server_in, client_out));
            }
        });
        (tap, address)
    }

    /// Copies one direction of a connection, recording it.
    async fn pump(self: Arc<Self>, mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n) = from.read(&mut buffer).await {
            if n == 0 || to.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            self.seen.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    }
}

/// Replication between regions over TLS, captured on the wire: the
/// object's plaintext never appears, though all its bytes went through.
#[tokio::test]
async fn a_capture_between_regions_holds_no_plaintext() {
    let (tap, relay) = Wiretap::start().await;
    let endpoint = format!("endpoint = \"https://{relay}\"");
    let tern =
        Deployment::start_split_tls_with(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST, WEST], &[(WEST, &endpoint)])
            .await
            .expect("tern starts");
    *tap.target.lock().unwrap() = Some(tern.listen_address(WEST));
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "cap-src", EAST).await;
    versioned(&west, "cap-dst", WEST).await;
    let role = tern.replication_role(EAST, "cap", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "cap-src", &role, vec![rule("all", 1, "", "cap-dst")]).await;
    let marker = b"PLAINTEXT-MARKER-that-must-never-cross-the-wire-";
    let body = marker.repeat(4096);
    east.put_object().bucket("cap-src").key("k").body(ByteStream::from(body.clone())).send().await.unwrap();
    assert_eq!(settled(&east, "cap-src", "k").await, Some(ReplicationStatus::Completed), "{}", tern.log());
    assert_eq!(crate::body_of(&west, "cap-dst", "k").await, body);
    let seen = tap.seen.lock().unwrap().clone();
    assert!(seen.len() > body.len(), "the replica crossed the relay ({} bytes seen)", seen.len());
    assert!(!seen.windows(marker.len()).any(|w| w == marker), "plaintext on the wire");
}

/// A request signed for eu-west-1 and sent to us-east-1 over HTTPS is relayed
/// over mutual TLS, and eu-west-1 knows it came over TLS.
#[tokio::test]
async fn relayed_requests_cross_over_mutual_tls_and_keep_their_transport() {
    let tern = two_tls_regions().await;
    versioned(&tern.s3(WEST), "tls-relayed", WEST).await;
    let tls_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::tls-relayed/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    tern.s3(WEST).put_bucket_policy().bucket("tls-relayed").policy(tls_only).send().await.unwrap();
    let url = format!("{}/tls-relayed/k", tern.endpoint(EAST));
    let body = crate::pattern(100_000, 3);
    let send = |method: &'static str, body: Vec<u8>| {
        let unsigned =
            tern_testkit::raw::Unsigned { region: WEST, service: "s3", method, url: &url, headers: &[], body };
        let signed = tern_testkit::raw::signed(&tern.root(), unsigned).unwrap();
        async { tern_testkit::raw::send_with(&tern.http().unwrap(), signed).await.unwrap() }
    };
    let put = send("PUT", body.clone()).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let got = send("GET", vec![]).await;
    assert_eq!((got.status, got.body), (200, body));
}
