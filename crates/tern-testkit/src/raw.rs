//! Requests signed as the SDKs sign them, which a test may alter after
//! signing (swap a body, change a header) to play an attacker; and their
//! answers whatever the status.

use std::time::SystemTime;

use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};

/// Credentials a request is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub access_key: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Creds {
    #[must_use]
    pub fn new(access_key: &str, secret: &str) -> Self {
        Self { access_key: access_key.to_owned(), secret: secret.to_owned(), token: None }
    }
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to sign: `url` is absolute.
#[derive(Debug, Clone)]
pub struct Unsigned<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Vec<u8>,
}

/// `request` signed with `SigV4` by `creds`, with `x-amz-content-sha256`
/// naming the body's hash.
pub fn signed(creds: &Creds, request: Unsigned<'_>) -> anyhow::Result<http::Request<Vec<u8>>> {
    let identity =
        aws_credential_types::Credentials::new(&creds.access_key, &creds.secret, creds.token.clone(), None, "raw")
            .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(request.service)
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(&request.body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut out = http::Request::builder().method(request.method).uri(request.url).body(request.body)?;
    for (name, value) in request.headers {
        out.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes())?, http::HeaderValue::from_str(value)?);
    }
    instructions.apply_to_request_http1x(&mut out);
    Ok(out)
}

/// Sends `request` as it is.
pub async fn send(request: http::Request<Vec<u8>>) -> anyhow::Result<Answer> {
    send_with(&reqwest::Client::new(), request).await
}

/// Sends `request` as it is, over `http`.
pub async fn send_with(http: &reqwest::Client, request: http::Request<Vec<u8>>) -> anyhow::Result<Answer> {
    let (parts, body) = request.into_parts();
    let response = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(Answer { status, headers, body })
}
