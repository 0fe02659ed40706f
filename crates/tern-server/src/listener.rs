//! A region's listeners: connections are accepted up to a bound, with
//! back-pressure (nothing is accepted while at the bound, and a full file
//! table pauses accepting instead of spinning), and whatever stalls is
//! closed: a TLS handshake or request headers that do not arrive in time,
//! and connections that move no bytes for the request timeout while no
//! request is being answered (every protocol, and before the protocol is
//! known). Each request carries where it came from and over what
//! ([`ClientAddress`], [`Transport`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::Body;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// What serves the requests of one listener.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// The address a request's connection came from, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub std::net::SocketAddr);

/// How a request's connection reached the region, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// The connection is TLS.
    pub tls: bool,
    /// The client presented a certificate that chains to the deployment's
    /// CA (mutual TLS between regions).
    pub peer_certificate: bool,
    /// The listener's own address is loopback: nothing left the machine.
    pub loopback: bool,
}

/// Where a request came from and over what, as policies see it.
#[must_use]
pub fn origin(extensions: &http::Extensions) -> tern_iam::policy::Origin {
    tern_iam::policy::Origin {
        secure_transport: extensions.get::<Transport>().is_some_and(|t| t.tls),
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d.
        source_ip: extensions.get::<ClientAddress>().map(|ClientAddress(client)| client.ip().to_canonical()),
        signature: None,
    }
}

/// Bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub timeout: Duration,
}

/// Serves `listener` (over TLS when `tls` is given) until `stop` changes,
/// then waits up to `drain` for requests in flight.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    (mut stop, drain): (watch::Receiver<bool>, Duration),
) {
    let graceful = GracefulShutdown::new();
    let mut builder = ConnBuilder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            _ = stop.changed() => break,
        };
        let (stream, client, slot) = accepted;
        // Without NODELAY a small response's head and body wait ~40 ms on delayed ACKs.
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            handler: Arc::clone(&handler),
            builder: Arc::clone(&builder),
            graceful: graceful.watcher(),
            client,
            timeout: limits.timeout,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let activity = Arc::new(Activity::new());
            let socket = Watched { inner: stream, activity: Arc::clone(&activity) };
            let transport = Transport { tls: tls.is_some(), peer_certificate: false, loopback };
            match tls {
                None => connection.serve(socket, transport, activity).await,
                Some(acceptor) => match tokio::time::timeout(limits.timeout, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => {
                        let peer_certificate = stream.get_ref().1.peer_certificates().is_some();
                        connection.serve(stream, Transport { peer_certificate, ..transport }, activity).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, %client, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                },
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish within {drain:?}");
    }
}

/// One accepted connection and what serving it needs.
struct Connection<H> {
    handler: Arc<H>,
    builder: Arc<ConnBuilder<TokioExecutor>>,
    graceful: hyper_util::server::graceful::Watcher,
    client: std::net::SocketAddr,
    timeout: Duration,
}

impl<H: Handler> Connection<H> {
    /// Serves requests on `io` until the client leaves, the connection
    /// idles for the timeout, or the region drains.
    async fn serve<I>(self, io: I, transport: Transport, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self { handler, builder, graceful, client, timeout } = self;
        let service = {
            let activity = Arc::clone(&activity);
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientAddress(client));
                req.extensions_mut().insert(transport);
                let (handler, in_flight) = (Arc::clone(&handler), activity.request());
                async move {
                    let response = handler.handle(req).await;
                    drop(in_flight);
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), service).into_owned());
        tokio::select! {
            ended = conn => if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            },
            () = activity.idle_for(timeout) => tracing::debug!("idle connection closed"),
        }
    }
}

/// The next connection, once a slot is free. Errors are transient
/// (a client gave up, the file table is full): they pause, never end the loop.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, std::net::SocketAddr, tokio::sync::OwnedSemaphorePermit) {
    let slot = Arc::clone(slots).acquire_owned().await.expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, client)) => return (stream, client, slot),
            Err(e) => {
                let exhausted = matches!(e.raw_os_error(), Some(23 | 24)); // ENFILE, EMFILE
                if exhausted {
                    tracing::warn!("cannot accept connections: {e}; pausing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                } else {
                    tracing::debug!(error = %e, "accept failed");
                }
            }
        }
    }
}

/// When a connection last moved bytes, and how many of its requests are
/// being answered.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

/// A request being answered; dropping it ends it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Activity {
    fn new() -> Self {
        Self { started: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves once no bytes have moved for `timeout` while no request was
    /// being answered (a handler may work for longer: its own body timeout
    /// and the client decide).
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = last + timeout;
            if Instant::now() >= due && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep_until(due.max(Instant::now() + Duration::from_millis(100))).await;
        }
    }
}

/// A socket that records its activity.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn moved<T>(&self, result: Poll<std::io::Result<T>>, bytes: usize) -> Poll<std::io::Result<T>> {
        if bytes > 0 {
            self.activity.touch();
        }
        result
    }

    fn wrote(&self, result: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        let written = match &result {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.moved(result, written)
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.moved(result, read)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(result)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
