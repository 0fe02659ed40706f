//! What an unauthenticated client can make a region hold: a browser-form
//! POST buffered whole (finding 6), connections that never finish their
//! request (11), and metrics series named by the client (12).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{EAST, WEST, one_region};

fn address(tern: &tern_testkit::Deployment) -> String {
    tern.endpoint(EAST).trim_start_matches("http://").to_owned()
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Everything the server sends on `stream` until it closes (or 5 s pass).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("</Error>") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The head of a KMS request under `access_key` whose signature will not
/// hold, announcing a body of `length` bytes.
fn forged_kms_head(tern: &tern_testkit::Deployment, access_key: &str, length: usize) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: AWS4-HMAC-SHA256 Credential={access_key}/{}/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00\r\nX-Amz-Date: {}\r\nContent-Length: {length}\r\n\r\n",
        address(tern),
        now.format(time::macros::format_description!("[year][month][day]")).unwrap(),
        now.format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z")).unwrap(),
    )
}

/// A connection to the region from 127.0.0.2: another client address.
async fn connect_from_elsewhere(tern: &tern_testkit::Deployment) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.connect(address(tern).parse().unwrap()).await.unwrap()
}

/// Finding 6: an anonymous `multipart/form-data` POST was buffered (up to
/// 5 GiB) before any access check: 1 GiB moved RSS from 22 MB to 1.07 GB.
#[tokio::test]
async fn unauthenticated_bodies_are_refused_before_they_are_read() {
    let tern = one_region().await;
    crate::bucket(&tern.s3(EAST), "forms").await;
    let pid = tern.pid().unwrap();
    let before = resident_kib(pid);
    let mut stream = TcpStream::connect(address(&tern)).await.unwrap();
    let head = format!(
        "POST /forms HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n",
        address(&tern),
        1u64 << 30
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        if stream.write_all(&chunk).await.is_err() {
            break; // The server answered and closed: what we want.
        }
    }
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    assert!(answer.contains("<Code>NotImplemented</Code>"));
    let grown = resident_kib(pid).saturating_sub(before);
    assert!(grown < 32 * 1024, "the region held {grown} KiB of a refused body");

    // A KMS request from an unknown key is refused before its body is read, too.
    let mut stream = TcpStream::connect(address(&tern)).await.unwrap();
    stream.write_all(forged_kms_head(&tern, "AKIANOBODY", 1_000_000).as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.contains("UnrecognizedClientException"), "{answer}");
}

/// The class of finding 6 for known callers: a KMS body is read before its
/// signature can hold, and an access key id is no secret. Bodies stalled
/// under someone's key from one address make only that address wait; the
/// key's owner, elsewhere, is answered at once.
#[tokio::test]
async fn a_known_key_id_does_not_lock_its_owner_out() {
    let tern = one_region().await;
    let owner = super::user_allowed(&tern, "owner", &["kms:ListKeys"], "*").await;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from_elsewhere(&tern).await;
        stream.write_all(forged_kms_head(&tern, &owner.access_key, 1000).as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // The four take their places first.
    let mut fifth = connect_from_elsewhere(&tern).await;
    fifth.write_all(format!("{}{{}}", forged_kms_head(&tern, &owner.access_key, 2)).as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(500), fifth.read(&mut byte)).await;
    assert!(waited.is_err(), "a fifth body from the same address waits its turn");

    let answer = tern.kms_as(&owner, EAST, "ListKeys", "{}").await.unwrap();
    assert_eq!(answer.status, 200, "the owner is answered while the flood waits: {}", answer.text());

    drop(stalled.pop());
    let answer = read_answer(&mut fifth).await;
    assert!(answer.contains("InvalidSignatureException"), "a freed place is taken, and the forgery refused: {answer}");
}

/// Finding 11: with no header-read or idle timeout, 1,100 half-sent
/// requests exhausted the file limit and both regions stopped answering.
#[tokio::test]
async fn half_sent_requests_neither_stall_a_region_nor_stay_open() {
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let tern = one_region().await;
    let mut stalled = Vec::new();
    for _ in 0..1100 {
        let mut stream = TcpStream::connect(address(&tern)).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ").await.unwrap();
        stalled.push(stream);
    }
    let started = Instant::now();
    tern.s3(EAST).list_buckets().send().await.expect("the region still answers");
    assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(21)).await;
    let mut closed = 0;
    for stream in &mut stalled {
        let mut buf = [0u8; 512];
        if matches!(tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await, Ok(Ok(_) | Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(closed, stalled.len(), "every half-sent request was closed within the request timeout");
}

/// At the connection bound, new clients wait instead of being refused, and
/// connections that never send a byte are closed after the timeout.
#[tokio::test]
async fn at_the_connection_bound_clients_wait_for_idle_ones_to_close() {
    let settings = "[limits]\nmax_connections = 16\nrequest_timeout_seconds = 2";
    let tern =
        tern_testkit::Deployment::start_with(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST], settings).await.unwrap();
    let mut silent = Vec::new();
    for _ in 0..32 {
        silent.push(TcpStream::connect(address(&tern)).await.unwrap());
    }
    let started = Instant::now();
    tern.s3(EAST).list_buckets().send().await.expect("answered once slots free up");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    drop(silent);
}

/// Finding 12: metrics were labelled with the unverified credential scope
/// and raw method: 3,000 anonymous requests grew `/_tern/metrics` to 486 MB.
#[tokio::test]
async fn metrics_labels_come_from_fixed_sets() {
    let tern = one_region().await;
    let http = reqwest::Client::new();
    let date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap();
    for i in 0..300 {
        let method = http::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        let scope = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/service{i}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let answer = http
            .request(method, tern.endpoint(EAST))
            .header("authorization", scope)
            .header("x-amz-date", &date)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_client_error() || answer.status().is_server_error());
    }
    let metrics = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(EAST))).await.unwrap().text().await.unwrap();
    let series = metrics.lines().filter(|l| l.starts_with("tern_http_requests_total")).count();
    assert!(series < 10, "{series} request series:\n{metrics}");
    assert!(!metrics.contains("service42") && !metrics.contains("M42"));
}

/// Metrics name buckets and rules: a region can serve them on a private
/// address of their own, and then not on its public listener.
#[tokio::test]
async fn metrics_can_move_off_the_public_listener() {
    let private = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let setting = format!("metrics_listen = \"{private}\"");
    let tern =
        tern_testkit::Deployment::start_split_with(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST], &[(EAST, &setting)])
            .await
            .unwrap();
    let public = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(EAST))).await.unwrap();
    assert_eq!(public.status(), 403, "the public listener treats it as any anonymous S3 request");
    let metrics = reqwest::get(format!("http://{private}/_tern/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tern_http_requests_total"), "{metrics}");
}

/// Unsigned S3 requests are served where a public bucket policy allows
/// them; anywhere else one is refused before its body is read, however
/// large it says the body is (s3s would otherwise read up to 4 MiB of XML
/// for a batch delete before the operation's own check).
#[tokio::test]
async fn anonymous_bodies_are_refused_unread_where_no_policy_lets_anyone_in() {
    let tern = one_region().await;
    tern.s3(EAST).create_bucket().bucket("closed").send().await.unwrap();
    for (method, target, length) in
        [("POST", "/closed?delete", 4 << 20), ("PUT", "/closed/k", 1 << 30), ("PUT", "/made-up/k?tagging", 4 << 20)]
    {
        let mut stream = TcpStream::connect(address(&tern)).await.unwrap();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n",
            address(&tern)
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let answer = read_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{method} {target}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(2), "answered without waiting for the body");
    }
}

/// A TLS client that connects and never says hello holds its connection
/// slot only until the request timeout.
#[tokio::test]
async fn a_stalled_tls_handshake_is_closed_at_the_request_timeout() {
    let settings = "[limits]\nrequest_timeout_seconds = 2";
    let binary = env!("CARGO_BIN_EXE_tern").as_ref();
    let tern = tern_testkit::Deployment::start_tls_with(binary, &[EAST], settings).await.expect("tern starts");
    let mut stream = TcpStream::connect(tern.endpoint(EAST).trim_start_matches("https://")).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "the server closed the silent connection: {closed:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the timeout");
}

/// The head of a PUT signed for eu-west-1 (valid: the body is promised,
/// never sent), to be sent to us-east-1, which relays it.
fn stalled_relay_head(tern: &tern_testkit::Deployment, key: &str) -> String {
    let url = format!("{}/relay-flood/{key}", tern.endpoint(EAST));
    let unsigned = tern_testkit::raw::Unsigned {
        region: WEST,
        service: "s3",
        method: "PUT",
        url: &url,
        headers: &[],
        body: vec![0; 1 << 20],
    };
    let signed = tern_testkit::raw::signed(&tern.root(), unsigned).unwrap();
    let mut lines = vec![format!("PUT /relay-flood/{key} HTTP/1.1"), format!("Content-Length: {}", 1 << 20)];
    lines.extend(signed.headers().iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())));
    if !signed.headers().contains_key("host") {
        lines.push(format!("Host: {}", address(tern)));
    }
    lines.join("\r\n") + "\r\n\r\n"
}

/// Relaying to another region holds a connection there for each request:
/// one client address holds at most 32 relays (the next is `SlowDown`), and
/// clients elsewhere are relayed while it does.
#[tokio::test]
async fn one_client_cannot_hold_every_relay() {
    let tern = crate::two_regions().await;
    crate::replication::versioned(&tern.s3(WEST), "relay-flood", WEST).await;
    let mut held = Vec::new();
    for i in 0..32 {
        let mut stream = connect_from_elsewhere(&tern).await;
        stream.write_all(stalled_relay_head(&tern, &format!("k{i}")).as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // The 32 take their places.
    let mut one_more = connect_from_elsewhere(&tern).await;
    one_more.write_all(stalled_relay_head(&tern, "k32").as_bytes()).await.unwrap();
    let answer = read_answer(&mut one_more).await;
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("SlowDown"), "{answer}");

    let elsewhere =
        tern_testkit::s3_client(&tern.endpoint(EAST), WEST, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    elsewhere.list_objects_v2().bucket("relay-flood").send().await.expect("another client is relayed meanwhile");
    drop(held);
}
