//! Authentication, presigned URLs, region checks and listing pagination.

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

    // A request signed for another region is refused by this one.
    let misdirected = tern_testkit::s3_client(&endpoint, WEST, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
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

/// A seed-signed streaming PUT whose first chunk claims 4 GiB is refused as
/// soon as the chunk header arrives, not buffered.
#[tokio::test]
async fn oversized_signed_chunks_are_refused_without_buffering() {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "chunks").await;
    let url = format!("{}/chunks/huge", tern.endpoint(EAST));
    let identity =
        aws_credential_types::Credentials::new(tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY, None, None, "t")
            .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(EAST)
        .name("s3")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("x-amz-decoded-content-length", "4294967295"),
        ("content-encoding", "aws-chunked"),
    ];
    let signable = SignableRequest::new(
        "PUT",
        &url,
        headers.into_iter(),
        SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
    )
    .unwrap();
    let mut request = http::Request::builder().method("PUT").uri(&url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let mut request = request.body(()).unwrap();
    sign(signable, &params).unwrap().into_parts().0.apply_to_request_http1x(&mut request);

    let mut body =
        b"ffffffff;chunk-signature=0000000000000000000000000000000000000000000000000000000000000000\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 1 << 20));
    let client = reqwest::Client::new();
    let mut builder = client.put(&url).body(body);
    for (k, v) in request.headers() {
        builder = builder.header(k.as_str(), v.to_str().unwrap());
    }
    let started = std::time::Instant::now();
    let response = builder.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 400);
    assert!(text.contains("<Code>InvalidRequest</Code>") && text.contains("more than 16777216 bytes"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(tern.s3(EAST).list_objects_v2().bucket("chunks").send().await.unwrap().contents().is_empty());
}
