//! Request bodies passed through the `aws-chunked` framing guard of
//! [`tern_sigv4::chunked`] before s3s sees them.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http_body::Body as _;
use tern_sigv4::chunked::ChunkGuard;

/// A request body passed through a [`ChunkGuard`].
pub struct GuardedBody {
    inner: hyper::body::Incoming,
    guard: ChunkGuard,
    failed: bool,
}

impl GuardedBody {
    #[must_use]
    pub fn new(inner: hyper::body::Incoming) -> Self {
        Self { inner, guard: ChunkGuard::default(), failed: false }
    }
}

impl Stream for GuardedBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.failed {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            if let Err(e) = self.guard.feed(&data) {
                self.failed = true;
                return Poll::Ready(Some(Err(Box::new(e))));
            }
            return Poll::Ready(Some(Ok(data)));
        }
    }
}

impl s3s::stream::ByteStream for GuardedBody {}
