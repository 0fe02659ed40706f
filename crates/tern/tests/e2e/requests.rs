//! Authentication, presigned URLs, region checks and listing pagination.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::{EAST, WEST, bucket, code, one_region, status, two_regions};

#[tokio::test]
async fn signatures_are_verified() {
    let tern = two_regions().await;
    let endpoint = tern.endpoint(EAST);
    let wrong_secret = tern_testkit::s3_client(&endpoint, EAST, tern_testkit::ACCESS_KEY, "not-the-secret");
    let err = wrong_secret.list_buckets().send().await.unwrap_err();
    assert_eq!((code(&err), status(&err)), ("SignatureDoesNotMatch".into(), 403));
    let unknown = tern_testkit::s3_client(&endpoint, EAST, "AKIAUNKNOWN000000000", "x");
    assert_eq!(code(&unknown.list_buckets().send().await.unwrap_err()), "InvalidAccessKeyId");

    // A request signed for a region the deployment does not have is refused
    // (one signed for another of its regions is relayed there).
    let misdirected =
        tern_testkit::s3_client(&endpoint, "ap-south-1", tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let err = misdirected.list_buckets().send().await.unwrap_err();
    assert_eq!((code(&err), status(&err)), ("AuthorizationHeaderMalformed".into(), 400));

    let anonymous = reqwest::get(format!("{endpoint}/")).await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert!(anonymous.text().await.unwrap().contains("<Code>AccessDenied</Code>"));
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "shared").await;
    let put = s3
        .put_object()
        .bucket("shared")
        .key("doc")
        .presigned(PresigningConfig::expires_in(Duration::from_mins(1)).unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let uploaded = http.put(put.uri()).body("presigned body").send().await.unwrap();
    assert_eq!(uploaded.status(), 200);

    let get = s3
        .get_object()
        .bucket("shared")
        .key("doc")
        .presigned(PresigningConfig::expires_in(Duration::from_mins(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(http.get(get.uri()).send().await.unwrap().text().await.unwrap(), "presigned body");

    let short = s3
        .get_object()
        .bucket("shared")
        .key("doc")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = http.get(short.uri()).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("AccessDenied"));

    let future = PresigningConfig::builder()
        .start_time(SystemTime::now() + Duration::from_hours(1))
        .expires_in(Duration::from_mins(1))
        .build()
        .unwrap();
    let skewed = s3.get_object().bucket("shared").key("doc").presigned(future).await.unwrap();
    let response = http.get(skewed.uri()).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("RequestTimeTooSkewed"));
}

#[tokio::test]
async fn listings_paginate_with_prefixes_and_delimiters() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "listing").await;
    let mut keys = Vec::new();
    for dir in ["a", "b", "c"] {
        for i in 0..5 {
            keys.push(format!("{dir}/{i}"));
        }
    }
    keys.extend(["top1".to_owned(), "top2".to_owned(), "b/deep/x".to_owned()]);
    for key in &keys {
        s3.put_object().bucket("listing").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }

    let mut all = Vec::new();
    let mut pages = s3.list_objects_v2().bucket("listing").max_keys(4).into_paginator().send();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        page_count += 1;
        all.extend(page.unwrap().contents().iter().map(|o| o.key().unwrap().to_owned()));
    }
    keys.sort();
    assert_eq!(all, keys);
    assert_eq!(page_count, 5);

    let mut folded = Vec::new();
    let mut pages = s3.list_objects_v2().bucket("listing").delimiter("/").max_keys(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        folded.extend(page.common_prefixes().iter().map(|p| p.prefix().unwrap().to_owned()));
        folded.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
    }
    folded.sort();
    assert_eq!(folded, ["a/", "b/", "c/", "top1", "top2"]);

    let inside = s3.list_objects_v2().bucket("listing").prefix("b/").delimiter("/").send().await.unwrap();
    assert_eq!(inside.common_prefixes()[0].prefix(), Some("b/deep/"));
    assert_eq!(inside.key_count(), Some(6));
    let after = s3.list_objects_v2().bucket("listing").start_after("c/3").send().await.unwrap();
    let after: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(after, ["c/4", "top1", "top2"]);

    let v1 = s3.list_objects().bucket("listing").prefix("a/").max_keys(3).send().await.unwrap();
    assert_eq!(v1.contents().len(), 3);
    assert_eq!(v1.is_truncated(), Some(true));
    let rest = s3.list_objects().bucket("listing").prefix("a/").marker("a/2").send().await.unwrap();
    assert_eq!(rest.contents().len(), 2);
}

/// Hand-built `SigV4` streaming requests, for the framings SDKs only use over HTTPS.
struct RawSigner {
    identity: aws_smithy_runtime_api::client::identity::Identity,
    time: SystemTime,
}

type Settings = aws_sigv4::http_request::SigningSettings;

impl RawSigner {
    fn new() -> Self {
        let identity =
            aws_credential_types::Credentials::new(tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY, None, None, "t")
                .into();
        Self { identity, time: SystemTime::now() }
    }

    fn params(&self) -> aws_sigv4::sign::v4::SigningParams<'_, Settings> {
        aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(EAST)
            .name("s3")
            .time(self.time)
            .settings(Settings::default())
            .build()
            .unwrap()
    }

    /// Signs a PUT whose payload hash is `mode`; returns its headers and the seed signature.
    fn seed(&self, url: &str, mode: &str, extra: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
        let mut headers: Vec<(&str, &str)> = vec![("x-amz-content-sha256", mode), ("content-encoding", "aws-chunked")];
        headers.extend_from_slice(extra);
        let signable =
            SignableRequest::new("PUT", url, headers.iter().copied(), SignableBody::Precomputed(mode.into())).unwrap();
        let (instructions, seed) = sign(signable, &self.params().into()).unwrap().into_parts();
        let mut request = http::Request::builder().method("PUT").uri(url).body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        all.extend(request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())));
        (all, seed)
    }

    /// Signs an ordinary request with a fully hashed body; returns its headers.
    fn plain(&self, method: &str, url: &str, body: &[u8]) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, sign};
        let mut settings = Settings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region(EAST)
            .name("s3")
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap();
        let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body)).unwrap();
        let (instructions, _) = sign(signable, &params.into()).unwrap().into_parts();
        let mut request = http::Request::builder().method(method).uri(url).body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect()
    }

    fn chunk_signature(&self, data: &[u8], previous: &str) -> String {
        let params = self.params();
        aws_sigv4::sign::v4::sign_chunk(&bytes::Bytes::copy_from_slice(data), previous, &params)
            .unwrap()
            .signature()
            .to_owned()
    }
}

async fn raw_put(url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> (u16, String) {
    let mut builder = reqwest::Client::new().put(url).body(body);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    let response = builder.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `chunks` framed as signed aws-chunked data, each signature chained from the seed.
fn signed_body(signer: &RawSigner, seed: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut previous = seed.to_owned();
    for chunk in chunks.iter().copied().chain([b"".as_slice()]) {
        let signature = signer.chunk_signature(chunk, &previous);
        body.extend_from_slice(format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
        previous = signature;
    }
    body
}

#[tokio::test]
async fn streaming_signed_uploads_are_verified_chunk_by_chunk() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "stream").await;
    let url = format!("{}/stream/signed", tern.endpoint(EAST));
    let signer = RawSigner::new();
    let mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let (headers, seed) = signer.seed(&url, mode, &[("x-amz-decoded-content-length", "11")]);
    let (status, text) = raw_put(&url, headers.clone(), signed_body(&signer, &seed, &[b"hello ", b"world"])).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(crate::body_of(&s3, "stream", "signed").await, b"hello world");

    // The same framing with one chunk signature altered is refused and stores nothing.
    let url = format!("{}/stream/forged", tern.endpoint(EAST));
    let (headers, seed) = signer.seed(&url, mode, &[("x-amz-decoded-content-length", "11")]);
    let mut forged = signed_body(&signer, &seed, &[b"hello ", b"world"]);
    let at = forged.windows(5).position(|w| w == b"world").unwrap() - 8;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let (status, text) = raw_put(&url, headers, forged).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(s3.head_object().bucket("stream").key("forged").send().await.is_err());
}

#[tokio::test]
async fn unsigned_payloads_with_trailing_checksums() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "trail").await;
    let signer = RawSigner::new();
    let mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    let extra = [("x-amz-decoded-content-length", "5"), ("x-amz-trailer", "x-amz-checksum-crc32")];
    // CRC32("hello") = 0x3610a686.
    for (key, crc, expected) in [("good", "NhCmhg==", 200), ("bad", "AAAAAA==", 400)] {
        let url = format!("{}/trail/{key}", tern.endpoint(EAST));
        let (headers, _) = signer.seed(&url, mode, &extra);
        let body = format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").into_bytes();
        let (status, text) = raw_put(&url, headers, body).await;
        assert_eq!(status, expected, "{key}: {text}");
        if expected == 400 {
            assert!(text.contains("BadDigest"), "{text}");
        }
    }
    let got = s3
        .get_object()
        .bucket("trail")
        .key("good")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some("NhCmhg=="));
    assert!(s3.head_object().bucket("trail").key("bad").send().await.is_err());
}

/// A seed-signed streaming PUT whose first chunk claims 4 GiB is refused as
/// soon as the chunk header arrives, not buffered.
#[tokio::test]
async fn oversized_signed_chunks_are_refused_without_buffering() {
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "chunks").await;
    let url = format!("{}/chunks/huge", tern.endpoint(EAST));
    let signer = RawSigner::new();
    let (headers, _) =
        signer.seed(&url, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &[("x-amz-decoded-content-length", "4294967295")]);
    let mut body =
        b"ffffffff;chunk-signature=0000000000000000000000000000000000000000000000000000000000000000\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 1 << 20));
    let started = std::time::Instant::now();
    let (status, text) = raw_put(&url, headers, body).await;
    assert_eq!(status, 400);
    assert!(text.contains("<Code>InvalidRequest</Code>") && text.contains("more than 16777216 bytes"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(tern.s3(EAST).list_objects_v2().bucket("chunks").send().await.unwrap().contents().is_empty());
}

#[tokio::test]
async fn prometheus_metrics_count_requests_per_region() {
    let tern = two_regions().await;
    let s3 = tern.s3(WEST);
    s3.list_buckets().send().await.unwrap();
    let _ = s3.head_bucket().bucket("missing-bucket").send().await;
    let text = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(WEST))).await.unwrap().text().await.unwrap();
    assert!(
        text.contains(r#"tern_http_requests_total{region="eu-west-1",service="s3",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"method="HEAD",status="404"} 1"#), "{text}");
    assert!(text.contains("tern_http_request_duration_seconds_count"), "{text}");
}

#[tokio::test]
async fn malformed_xml_is_refused_and_changes_nothing() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "xml").await;
    let signer = RawSigner::new();
    for body in [
        &b"<VersioningConfiguration><Status>Enabled"[..],
        b"not xml at all",
        b"<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>",
    ] {
        let url = format!("{}/xml?versioning", tern.endpoint(EAST));
        let (status, text) = raw_put(&url, signer.plain("PUT", &url, body), body.to_vec()).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("<Code>MalformedXML</Code>"), "{text}");
    }
    assert!(s3.get_bucket_versioning().bucket("xml").send().await.unwrap().status().is_none());
}

/// Everything the server sends on `stream` until it closes it; `None` if it
/// keeps the connection open for 5 s.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&answer).into_owned()),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// A refusal answered before the body is read closes the connection, so the
/// client's next request never lands in the middle of the unread body (it
/// once came back as a bare `400 Bad Request`).
#[tokio::test]
async fn a_refused_body_never_swallows_the_next_request() {
    use tokio::io::AsyncWriteExt as _;
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "reuse").await;
    let address = tern.endpoint(EAST).trim_start_matches("http://").to_owned();
    let next = format!("GET /reuse HTTP/1.1\r\nHost: {address}\r\n\r\n");
    for expect in ["Expect: 100-continue\r\n", ""] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!("PUT /reuse/k HTTP/1.1\r\nHost: {address}\r\n{expect}Content-Length: 11\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The body after all, then the next request on the same connection.
        let _ = stream.write_all(format!("hello world{next}").as_bytes()).await;
        let answer = read_until_closed(&mut stream).await.expect("the connection stays open after a refusal");
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }
    // The SDK, whose refused PUT leaves its connection to the pool, goes on.
    let s3 = tern.s3(EAST);
    for _ in 0..3 {
        assert_eq!(crate::put_under_missing_key(&s3, "reuse", vec![7u8; 1 << 20]).await, "KMS.NotFoundException");
        s3.list_objects_v2().bucket("reuse").send().await.unwrap();
    }
}

/// Client mistakes are the client's: the server logs them below ERROR and
/// WARN, and writes no colour codes into a log file.
#[tokio::test]
async fn client_mistakes_are_not_server_errors_in_the_log() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "mistakes").await;
    let endpoint = tern.endpoint(EAST);
    let wrong_secret = tern_testkit::s3_client(&endpoint, EAST, tern_testkit::ACCESS_KEY, "not-the-secret");
    assert_eq!(code(&wrong_secret.list_buckets().send().await.unwrap_err()), "SignatureDoesNotMatch");
    let unknown = tern_testkit::s3_client(&endpoint, EAST, "AKIAUNKNOWN000000000", "x");
    assert_eq!(code(&unknown.list_buckets().send().await.unwrap_err()), "InvalidAccessKeyId");
    assert_eq!(code(&s3.get_object().bucket("mistakes").key("none").send().await.unwrap_err()), "NoSuchKey");
    assert_eq!(code(&s3.get_object().bucket("no-bucket").key("k").send().await.unwrap_err()), "NoSuchBucket");
    let reader = tern
        .user(
            "reader",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        )
        .await
        .unwrap();
    let denied = tern.s3_as(&reader, EAST).put_object().bucket("mistakes").key("k").send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDenied");
    assert_eq!(crate::put_under_missing_key(&s3, "mistakes", Vec::new()).await, "KMS.NotFoundException");
    let log = tern.log();
    let loud: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
    assert!(loud.is_empty(), "client mistakes logged as server trouble:\n{}", loud.join("\n"));
    assert!(!log.contains('\u{1b}'), "colour codes in a log file:\n{log}");
    assert!(log.contains("serving on"), "{log}");
}

/// What a client sends to pass itself off as relayed from another address.
const FORGED_RELAY: &[(&str, &str)] = &[("x-tern-forwarded-for", "127.0.0.1 0 1"), ("x-tern-forwarded-proof", "00")];

/// A request signed for eu-west-1 but sent to us-east-1's endpoint is
/// relayed to eu-west-1, which verifies it and answers, streaming both ways.
/// The owner judges the client: its policies see the client's address, a
/// client's own claim to have been relayed is refused, and this region's
/// routes between regions are never relayed.
#[tokio::test]
async fn requests_signed_for_another_region_are_relayed_to_it() {
    let tern = two_regions().await;
    let east_endpoint = tern.endpoint(EAST);
    // An SDK configured for eu-west-1, with us-east-1's endpoint.
    let misdirected = tern_testkit::s3_client(&east_endpoint, WEST, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    misdirected
        .create_bucket()
        .bucket("relayed")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let data = crate::pattern(3 << 20, 7);
    misdirected.put_object().bucket("relayed").key("k").body(ByteStream::from(data.clone())).send().await.unwrap();
    assert_eq!(crate::body_of(&tern.s3(WEST), "relayed", "k").await, data, "the bytes live in eu-west-1");
    assert_eq!(crate::body_of(&misdirected, "relayed", "k").await, data);
    let missing = misdirected.get_object().bucket("relayed").key("absent").send().await.unwrap_err();
    assert_eq!((code(&missing), status(&missing)), ("NoSuchKey".into(), 404));
    let metrics = reqwest::get(format!("{east_endpoint}/_tern/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"service="relayed""#), "{metrics}");

    // eu-west-1's policy denies the client's address; the relay's is another.
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::relayed/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.2/32"}}}]}"#;
    tern.s3(WEST).put_bucket_policy().bucket("relayed").policy(deny).send().await.unwrap();
    let from_elsewhere =
        reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let url = format!("{east_endpoint}/relayed/k");
    let get = |client: reqwest::Client, extra: &'static [(&'static str, &'static str)]| {
        let signed = tern_testkit::raw::signed(
            &tern.root(),
            tern_testkit::raw::Unsigned {
                region: WEST,
                service: "s3",
                method: "GET",
                url: &url,
                headers: extra,
                body: vec![],
            },
        )
        .unwrap();
        async move { tern_testkit::raw::send_with(&client, signed).await.unwrap() }
    };
    let denied = get(from_elsewhere.clone(), &[]).await;
    assert_eq!(denied.status, 403, "{}", String::from_utf8_lossy(&denied.body));
    assert_eq!(get(reqwest::Client::new(), &[]).await.status, 200);
    // A client claiming to be relayed itself, to borrow an address.
    let refused = get(from_elsewhere, FORGED_RELAY).await;
    assert_eq!(refused.status, 403, "{}", String::from_utf8_lossy(&refused.body));

    // Routes between regions stay the addressed region's own.
    let internal = tern_testkit::raw::signed(
        &tern.root(),
        tern_testkit::raw::Unsigned {
            region: WEST,
            service: "s3",
            method: "GET",
            url: &format!("{east_endpoint}/_tern/registry/relayed"),
            headers: &[],
            body: vec![],
        },
    )
    .unwrap();
    let answer = tern_testkit::raw::send_with(&reqwest::Client::new(), internal).await.unwrap();
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    assert!(String::from_utf8_lossy(&answer.body).contains("AuthorizationHeaderMalformed"));
}

#[tokio::test]
async fn each_request_leaves_one_access_line_and_never_its_query() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "acc").await;
    s3.put_object().bucket("acc").key("dir/a b.txt").body(ByteStream::from_static(b"12345")).send().await.unwrap();
    let presigned = s3
        .get_object()
        .bucket("acc")
        .key("dir/a b.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_mins(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(reqwest::get(presigned.uri()).await.unwrap().text().await.unwrap(), "12345");
    let stranger = tern_testkit::s3_client(&tern.endpoint(EAST), EAST, "AKIAUNKNOWN000000000", "nope");
    let _ = stranger.get_object().bucket("acc").key("dir/a b.txt").send().await.unwrap_err();

    let root = "principal=arn:aws:iam::000000000000:root";
    // Lines leave through a writer thread: wait for the last request's too.
    let lines = tern_testkit::eventually(Duration::from_secs(5), "the GET's and the refusal's lines", || {
        let log = tern.log();
        async move { (log.contains(r#"operation="GetObject""#) && log.contains("status=403")).then_some(log) }
    })
    .await;
    let line = |needle: &str| lines.lines().find(|l| l.contains(needle)).map(str::to_owned).unwrap_or_default();
    let put = line(r#"operation="PutObject""#);
    assert!(put.contains(root) && put.contains(r#"bucket="acc" key="dir/a b.txt" status=200 bytes_in=5"#), "{put}");
    let get = line(r#"operation="GetObject" bucket="acc""#);
    assert!(get.contains("status=200") && get.contains("bytes_out=5") && get.contains("request_id="), "{get}");
    assert!(!lines.contains("X-Amz-Signature") && !lines.contains("X-Amz-Credential"), "no query string is logged");
    let refused = line("status=403");
    assert!(refused.contains(r#"key="dir/a b.txt""#) && refused.contains("principal=-"), "{refused}");
}

#[tokio::test]
async fn buckets_get_access_log_files_in_awss_format_and_only_real_buckets_do() {
    let logs = tempfile::tempdir().unwrap();
    let settings = format!("[access_log]\ndir = \"{}\"", logs.path().display());
    let binary: &std::path::Path = env!("CARGO_BIN_EXE_tern").as_ref();
    let tern = tern_testkit::Deployment::start_with(binary, &[EAST], &settings).await.unwrap();
    let s3 = tern.s3(EAST);
    bucket(&s3, "logged").await;
    s3.put_object().bucket("logged").key("k 1").body(ByteStream::from_static(b"abc")).send().await.unwrap();
    s3.get_object().bucket("logged").key("k 1").send().await.unwrap();
    let _ = s3.get_object().bucket("logged").key("missing").send().await.unwrap_err();
    let _ = s3.get_object().bucket("not-a-bucket-here").key("x").send().await.unwrap_err();

    let dir = logs.path().join("logged");
    let text = tern_testkit::eventually(Duration::from_secs(10), "the GETs in the bucket's log", || {
        let text = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
            .collect::<String>();
        // Lines are written in order: the last request's means all are there.
        async move { text.contains("REST.GET.OBJECT missing ").then_some(text) }
    })
    .await;
    let put = text.lines().find(|l| l.contains("REST.PUT.OBJECT")).unwrap();
    assert!(put.starts_with("000000000000 logged ["), "{put}");
    assert!(put.contains(" arn:aws:iam::000000000000:root "), "{put}");
    assert!(put.contains(r#" REST.PUT.OBJECT k+1 "PUT /logged/k%201 HTTP/1.1" 200 - "#), "{put}");
    assert!(put.contains(" SigV4 - AuthHeader "), "{put}");
    let get = text.lines().find(|l| l.contains("REST.GET.OBJECT")).unwrap();
    assert!(get.contains(r#"HTTP/1.1" 200 - 3 3 "#), "three bytes sent, of a three-byte object: {get}");
    let missing = text.lines().find(|l| l.contains("REST.GET.OBJECT missing ")).unwrap();
    assert!(missing.contains(r#"HTTP/1.1" 404 NoSuchKey "#), "the error code is logged: {missing}");
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    let name = file.file_name().into_string().unwrap();
    assert!(name.ends_with(&format!("-{EAST}.log")) && name.len() == "YYYY-MM-DD-HH-".len() + EAST.len() + 4, "{name}");
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!logs.path().join("not-a-bucket-here").exists(), "no file for a bucket that is not there");
}
