//! Signatures: bodies swapped under a valid signature (finding 2), `SigV2`
//! without a clock (13), presigned URLs valid for years (15), and headers
//! given twice so that two readers see two requests.

use std::time::{Duration, SystemTime};

use super::error_code;
use crate::{EAST, WEST, bucket, one_region, two_regions};

fn swap_body(request: &mut http::Request<Vec<u8>>, body: &[u8]) {
    *request.body_mut() = body.to_vec();
    request.headers_mut().insert(http::header::CONTENT_LENGTH, body.len().into());
}

/// Finding 2: KMS, IAM and STS trusted `x-amz-content-sha256` without
/// hashing the body, so a root-signed request ran whatever body replaced
/// its own, on every service and on the internal routes.
#[tokio::test]
async fn a_signature_covers_the_body_that_arrives() {
    let tern = two_regions().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let mut get_user = tern
        .request_as(&tern.root(), EAST, "iam", ("POST", "/"), &form, b"Action=GetUser&Version=2010-05-08".to_vec())
        .unwrap();
    swap_body(&mut get_user, b"Action=CreateUser&UserName=mallory&Version=2010-05-08");
    let answer = tern_testkit::raw::send(get_user).await.unwrap();
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (403, "SignatureDoesNotMatch"));
    let users = tern.iam_call(EAST, &[("Action", "ListUsers"), ("Version", "2010-05-08")]).await.unwrap();
    assert!(!users.contains("mallory"));

    let target = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "TrentService.CreateKey")];
    let mut create_key = tern.request_as(&tern.root(), WEST, "kms", ("POST", "/"), &target, b"{}".to_vec()).unwrap();
    let open_to_all = r#"{"Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kms:*\",\"Resource\":\"*\"}]}","BypassPolicyLockoutSafetyCheck":true}"#;
    swap_body(&mut create_key, open_to_all.as_bytes());
    let answer = tern_testkit::raw::send(create_key).await.unwrap();
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (400, "InvalidSignatureException"));
    let keys = tern.kms_as(&tern.root(), WEST, "ListKeys", "{}").await.unwrap().text();
    assert!(keys.contains("\"Keys\":[]"), "no key was created: {keys}");

    // The internal snapshot route: an attacker's key swapped in.
    let honest = br#"{"Follower":"eu-west-1","Epoch":"","Since":0,"Recipient":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","Nonce":"01"}"#;
    let mut snapshot =
        tern.request_as(&tern.root(), EAST, "iam", ("POST", "/_tern/iam/snapshot"), &[], honest.to_vec()).unwrap();
    swap_body(&mut snapshot, &honest.to_vec().iter().map(|b| if *b == b'A' { b'B' } else { *b }).collect::<Vec<_>>());
    assert_eq!(tern_testkit::raw::send(snapshot).await.unwrap().status, 403);

    // S3 too, on its own path through s3s.
    bucket(&tern.s3(EAST), "bodies").await;
    let mut put =
        tern.request_as(&tern.root(), EAST, "s3", ("PUT", "/bodies/doc"), &[], b"what was signed".to_vec()).unwrap();
    swap_body(&mut put, b"what was swapped");
    let answer = tern_testkit::raw::send(put).await.unwrap();
    assert_eq!((answer.status, error_code(&answer.text()).as_str()), (400, "XAmzContentSHA256Mismatch"));
    assert!(tern.s3(EAST).head_object().bucket("bodies").key("doc").send().await.is_err(), "nothing was stored");
}

/// A `SigV2` signature of `string_to_sign`, as S3's legacy clients make it.
fn v2_signature(string_to_sign: &str) -> String {
    use base64::Engine as _;
    let key =
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, tern_testkit::SECRET_KEY.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(aws_lc_rs::hmac::sign(&key, string_to_sign.as_bytes()))
}

/// GET `/legacy/k` at `endpoint`, dated now, with a `SigV2` `signature`.
async fn v2_get(endpoint: &str, signature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{endpoint}/legacy/k"))
        .header("date", http_date(SystemTime::now()))
        .header("authorization", format!("AWS {}:{signature}", tern_testkit::ACCESS_KEY))
        .send()
        .await
        .unwrap()
}

fn http_date(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc2822).unwrap().replace("+0000", "GMT")
}

/// Finding 13: a `SigV2` header signature dated 2024 and a presigned URL
/// valid for 20 years both worked; now the clock counts, and a deployment
/// can turn `SigV2` off.
#[tokio::test]
async fn signature_v2_respects_the_clock_and_can_be_turned_off() {
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "legacy").await;
    tern.s3(EAST).put_object().bucket("legacy").key("k").body(b"v2".to_vec().into()).send().await.unwrap();
    let http = reqwest::Client::new();
    let get = |date: String| {
        let signature = v2_signature(&format!("GET\n\n\n{date}\n/legacy/k"));
        http.get(format!("{}/legacy/k", tern.endpoint(EAST)))
            .header("date", date)
            .header("authorization", format!("AWS {}:{signature}", tern_testkit::ACCESS_KEY))
            .send()
    };
    let now = get(http_date(SystemTime::now())).await.unwrap();
    assert_eq!(now.status(), 200, "SigV2 works for clients that still use it");
    assert_eq!(now.text().await.unwrap(), "v2");
    let old = get("Mon, 01 Jan 2024 00:00:00 GMT".to_owned()).await.unwrap();
    assert_eq!(old.status(), 403);
    assert_eq!(error_code(&old.text().await.unwrap()), "RequestTimeTooSkewed");

    let presigned = |expires: u64| {
        let signature = v2_signature(&format!("GET\n\n\n{expires}\n/legacy/k"));
        let query = format!(
            "AWSAccessKeyId={}&Expires={expires}&Signature={}",
            tern_testkit::ACCESS_KEY,
            urlencoding::encode(&signature)
        );
        http.get(format!("{}/legacy/k?{query}", tern.endpoint(EAST))).send()
    };
    let epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(presigned(epoch + 600).await.unwrap().status(), 200);
    let twenty_years = presigned(epoch + 20 * 365 * 86_400).await.unwrap();
    assert_eq!(twenty_years.status(), 400);
    assert_eq!(error_code(&twenty_years.text().await.unwrap()), "AuthorizationQueryParametersError");
    let forged = v2_get(&tern.endpoint(EAST), &v2_signature("something else")).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(error_code(&forged.text().await.unwrap()), "SignatureDoesNotMatch");

    let strict = tern_testkit::Deployment::start_with(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST], "sigv2 = false")
        .await
        .unwrap();
    let refused = v2_get(&strict.endpoint(EAST), &v2_signature("x")).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("Please use AWS4-HMAC-SHA256"));
}

/// Finding 15: `X-Amz-Expires` of ten years was accepted; AWS allows a week.
#[tokio::test]
async fn presigned_urls_live_at_most_a_week() {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "shared").await;
    let presign = |lifetime: Duration| {
        let identity =
            aws_credential_types::Credentials::new(tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY, None, None, "t")
                .into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(EAST)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("{}/shared", tern.endpoint(EAST));
        let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::UnsignedPayload).unwrap();
        let mut request = http::Request::builder().uri(&url).body(()).unwrap();
        sign(signable, &params).unwrap().into_parts().0.apply_to_request_http1x(&mut request);
        request.uri().to_string()
    };
    let week = reqwest::get(presign(Duration::from_hours(7 * 24))).await.unwrap();
    assert_eq!(week.status(), 200);
    let decade = reqwest::get(presign(Duration::from_hours(10 * 365 * 24))).await.unwrap();
    assert_eq!(decade.status(), 400);
    assert_eq!(error_code(&decade.text().await.unwrap()), "AuthorizationQueryParametersError");
}

/// The class of finding 2: with a header given twice, the outer layer and
/// s3s could each read a different value (the first, or none at all) and
/// check one request while serving another. Such requests are refused.
#[tokio::test]
async fn a_header_given_twice_is_refused() {
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "twice").await;
    let repeats = [
        ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x", "AWS AKIDEXAMPLE:c2lnbmF0dXJl"),
        ("content-type", "application/octet-stream", "multipart/form-data; boundary=x"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-security-token", "one", "two"),
    ];
    for (name, first, second) in repeats {
        for (method, path, service) in [("PUT", "/twice/doc", "s3"), ("POST", "/twice", "s3"), ("POST", "/", "iam")] {
            let mut request =
                tern.request_as(&tern.root(), EAST, service, (method, path), &[], b"body".to_vec()).unwrap();
            // The signed value, if any, stays first: what a reader of the first value would check.
            let first = request.headers_mut().remove(name).unwrap_or(http::HeaderValue::from_static(first));
            request.headers_mut().append(name, first);
            request.headers_mut().append(name, http::HeaderValue::from_static(second));
            let answer = tern_testkit::raw::send(request).await.unwrap();
            let refused = (answer.status, error_code(&answer.text()));
            assert_eq!(refused, (400, "InvalidArgument".to_owned()), "{method} {path} with {name} twice");
        }
    }
    assert!(tern.s3(EAST).head_object().bucket("twice").key("doc").send().await.is_err(), "nothing was stored");
}
