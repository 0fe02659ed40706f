//! Request bodies as the services see them: each must keep moving (a client
//! that stops sending for the request timeout gets `RequestTimeout`, as S3
//! answers, instead of holding a handler and a connection forever), and a
//! streaming-signed one passes the `aws-chunked` framing guard of
//! [`tern_sigv4::chunked`] before s3s buffers any chunk.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http_body::Body as _;
use s3s::stream::RemainingLength;
use tern_sigv4::chunked::ChunkGuard;
use tokio::time::{Instant, Sleep};

/// A request body that fails once no data has arrived for `idle`.
pub struct RequestBody {
    inner: hyper::body::Incoming,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    guard: Option<ChunkGuard>,
    failed: bool,
}

impl RequestBody {
    /// `chunked` when the body is `aws-chunked` framing (a streaming signature).
    #[must_use]
    pub fn new(inner: hyper::body::Incoming, idle: Duration, chunked: bool) -> Self {
        let deadline = Box::pin(tokio::time::sleep(idle));
        Self { inner, idle, deadline, guard: chunked.then(ChunkGuard::default), failed: false }
    }

    fn fail(&mut self, e: s3s::StdError) -> Poll<Option<Result<Bytes, s3s::StdError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for RequestBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.failed {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => {
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        let stalled = std::io::Error::new(std::io::ErrorKind::TimedOut, tern_s3::REQUEST_TIMEOUT_TEXT);
                        return self.fail(Box::new(stalled));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return self.fail(Box::new(e)),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let next = Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
            let Ok(data) = frame.into_data() else { continue };
            if let Some(Err(e)) = self.guard.as_mut().map(|g| g.feed(&data)) {
                return self.fail(Box::new(e));
            }
            return Poll::Ready(Some(Ok(data)));
        }
    }
}

impl s3s::stream::ByteStream for RequestBody {
    fn remaining_length(&self) -> RemainingLength {
        let hint = self.inner.size_hint();
        let upper = hint.upper().and_then(|n| usize::try_from(n).ok());
        RemainingLength::new(
            usize::try_from(hint.lower()).unwrap_or(usize::MAX).min(upper.unwrap_or(usize::MAX)),
            upper,
        )
    }
}
