//! Requests of the replication worker, signed as the rule's role. Every
//! body it sends is covered by the signature: streamed as `aws-chunked`
//! frames, each signed and chained to the one before (AWS's
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, as the SDKs upload), so nobody on
//! the path between regions can alter a replica's bytes, and a request
//! without a body signs the hash of an empty one.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::Replicator;
use crate::reasons::Trouble;
use crate::transfer::{RoleSession, transient};

/// Plaintext per signed frame: large enough that signing costs little.
const FRAME: usize = 1 << 20;
const STREAMING: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// `;chunk-signature=` and a hex HMAC-SHA256.
const FRAME_SIGNATURE_LEN: u64 = 17 + 64;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body: its length and its bytes.
pub(crate) struct Payload {
    pub len: u64,
    pub body: BoxStream<'static, Result<Bytes, BoxError>>,
}

impl Payload {
    /// A body from any stream of bytes.
    pub fn streamed<E: Into<BoxError> + 'static>(
        len: u64,
        body: impl futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
    ) -> Self {
        Self { len, body: body.map_err(Into::into).boxed() }
    }

    /// A body already in memory.
    pub fn bytes(bytes: Bytes) -> Self {
        Self::streamed(bytes.len() as u64, futures::stream::once(async move { Ok::<_, BoxError>(bytes) }))
    }
}

/// The encoded length of `len` plaintext bytes in frames of [`FRAME`].
fn framed_len(len: u64) -> u64 {
    let frame = |size: u64| format!("{size:x}").len() as u64 + FRAME_SIGNATURE_LEN + 2 + size + 2;
    let full = len / FRAME as u64;
    let rest = len % FRAME as u64;
    full * frame(FRAME as u64) + if rest > 0 { frame(rest) } else { 0 } + frame(0)
}

/// Signs frames the way the seed request was signed.
struct FrameSigner {
    identity: aws_smithy_runtime_api::client::identity::Identity,
    region: String,
    time: SystemTime,
    previous: String,
}

impl FrameSigner {
    /// The frame of `data`: its header, the data itself (not copied), its end.
    fn frame(&mut self, data: Bytes) -> Result<[Bytes; 3], BoxError> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(self.time)
            .settings(())
            .build()?;
        let signature = v4::sign_chunk(&data, &self.previous, &params)?.into_parts().1;
        let header = Bytes::from(format!("{:x};chunk-signature={signature}\r\n", data.len()));
        self.previous = signature;
        Ok([header, data, Bytes::from_static(b"\r\n")])
    }
}

/// `body` cut into frames of [`FRAME`] bytes, each signed, then the final
/// empty frame.
fn signed_frames(body: BoxStream<'static, Result<Bytes, BoxError>>, signer: FrameSigner) -> reqwest::Body {
    let state = (body, BytesMut::new(), Some(signer));
    let frames = futures::stream::unfold(state, |(mut body, mut pending, signer)| async move {
        let mut signer = signer?;
        while pending.len() < FRAME {
            match body.next().await {
                Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                Some(Err(e)) => return Some((Err(e), (body, pending, None))),
                None => break,
            }
        }
        let data = pending.split_to(pending.len().min(FRAME)).freeze();
        // An empty frame is the final one.
        let last = data.is_empty();
        let frame = signer.frame(data);
        Some((frame, (body, pending, (!last).then_some(signer))))
    });
    let pieces = frames.map_ok(|frame| futures::stream::iter(frame.map(Ok::<_, BoxError>))).try_flatten();
    reqwest::Body::wrap_stream(pieces)
}

impl Replicator {
    /// A request to `url` signed for `region` as `session`, carrying `payload` if any.
    pub(crate) fn signed(
        &self,
        method: &http::Method,
        url: &str,
        region: &str,
        session: &RoleSession,
        headers: &[(&'static str, String)],
        payload: Option<Payload>,
    ) -> Result<reqwest::RequestBuilder, Trouble> {
        let identity = session.identity();
        let time = SystemTime::now();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(transient)?
            .into();
        let mut request = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(payload) = &payload {
            request = request
                .header("content-encoding", "aws-chunked")
                .header("x-amz-decoded-content-length", payload.len)
                .header("content-length", framed_len(payload.len));
        }
        let mut request = request.body(()).map_err(transient)?;
        let body = match payload {
            Some(_) => SignableBody::Precomputed(STREAMING.to_owned()),
            None => SignableBody::Bytes(&[]),
        };
        let signable_headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new(method.as_str(), url, signable_headers, body).map_err(transient)?;
        let (instructions, seed) = sign(signable, &params).map_err(transient)?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let builder = self.http.request(method.clone(), url).headers(request.headers().clone());
        Ok(match payload {
            Some(payload) => {
                let signer = FrameSigner { identity, region: region.to_owned(), time, previous: seed };
                builder.body(signed_frames(payload.body, signer))
            }
            None => builder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_lengths_count_every_header_and_terminator() {
        // 0;chunk-signature=<64>\r\n\r\n
        assert_eq!(framed_len(0), 86);
        // a;chunk-signature=<64>\r\n + 10 + \r\n, then the final frame
        assert_eq!(framed_len(10), 1 + 81 + 2 + 10 + 2 + 86);
        let frame = FRAME as u64;
        assert_eq!(framed_len(frame), 6 + 81 + 2 + frame + 2 + 86);
    }
}
