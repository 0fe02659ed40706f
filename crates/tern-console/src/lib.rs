//! The web console every region serves at `/_tern/console/`.
//!
//! A user signs in with an access key pair; the console keeps it in a
//! server-side session (the browser holds only a random session id in an
//! `HttpOnly`, SameSite=Strict cookie) and is then a client of the
//! deployment's own S3, KMS and STS APIs, signing every call as that user.
//! Each action is therefore authorized exactly as the API authorizes it: a
//! read-only user sees, and is refused what it may not change. Pages are
//! rendered on the server (maud escapes every value); a little JavaScript
//! adds upload progress and the replication lag chart. Everything is in the
//! binary: no CDN, nothing fetched at run time.

mod clients;
mod html;
mod origin;
mod pages;
mod request;
mod session;
mod traffic;

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::Body;

pub use clients::trusting;

use clients::ClientFactory;
use request::ConsoleRequest;
use session::{Session, Sessions};
use traffic::Traffic;

/// Where the console lives on every region's listener.
pub const PREFIX: &str = "/_tern/console/";

/// The console of one region.
pub struct Console {
    region: String,
    clients: ClientFactory,
    sessions: Sessions,
    traffic: Arc<Traffic>,
    /// The listener speaks HTTPS: cookies are marked `Secure`.
    secure: bool,
    /// Sign-ins checked at once: each costs a signed STS call.
    sign_ins: tokio::sync::Semaphore,
    /// MiB of uploads held in memory at once, across every session.
    uploads: tokio::sync::Semaphore,
}

impl Console {
    /// The console of `cx.region`, calling every region of the deployment
    /// at its endpoint.
    pub fn new(cx: &tern_server::ConsoleContext) -> anyhow::Result<Self> {
        let traffic = Arc::new(Traffic::new(Arc::clone(&cx.metrics)));
        Traffic::sample_every(&traffic, traffic::SAMPLE_PERIOD);
        Ok(Self {
            region: cx.region.clone(),
            clients: ClientFactory::new(&cx.deployment, &cx.region, Arc::clone(&cx.voucher))?,
            sessions: Sessions::default(),
            traffic,
            secure: cx.secure,
            sign_ins: tokio::sync::Semaphore::new(8),
            uploads: tokio::sync::Semaphore::new(256),
        })
    }

    /// Serves `req`, every call made for it carrying its client's origin.
    async fn serve_on_behalf(&self, req: Request<Incoming>) -> Response<Body> {
        let origin = tern_server::ClientOrigin::of(req.extensions());
        // Boxed: every page's future lives in it.
        Box::pin(origin::on_behalf_of(origin, self.route(req))).await
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().strip_prefix(PREFIX).unwrap_or_default().to_owned();
        let method = req.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "static/console.css") => return html::asset(html::CSS, "text/css; charset=utf-8"),
            (&Method::GET, "static/console.js") => return html::asset(html::JS, "text/javascript; charset=utf-8"),
            (&Method::POST, "login") => return pages::login::submit(self, req).await,
            _ => {}
        }
        let Some(session) = self.sessions.of(req.headers()) else {
            return match (&method, path.as_str()) {
                (&Method::GET, "") => pages::login::form(None),
                (&Method::GET, _) => html::redirect(PREFIX),
                _ => html::status_page(StatusCode::FORBIDDEN, "Sign in first."),
            };
        };
        let req = match ConsoleRequest::read(req, &session).await {
            Ok(req) => req,
            Err(refusal) => return refusal.page(),
        };
        self.page(&path, &session, req).await
    }

    async fn page(&self, path: &str, session: &Session, req: ConsoleRequest) -> Response<Body> {
        let post = req.method == Method::POST;
        match (post, path) {
            (false, "") => html::redirect(&format!("{PREFIX}overview")),
            (true, "logout") => pages::login::logout(self, session),
            (false, "overview") => pages::overview::show(self, session).await,
            (false, "buckets") => pages::buckets::list(self, session, &req).await,
            (true, "buckets") => pages::buckets::create(self, session, &req).await,
            (false, "bucket") => pages::objects::browse(self, session, &req).await,
            (false, "object") => pages::objects::download(session, &req).await,
            (true, "upload") => pages::objects::upload(&self.uploads, session, req).await,
            (true, "delete") => pages::objects::delete(session, &req).await,
            (false, "keys") => pages::keys::list(self, session).await,
            (false, "replication") => pages::replication::show(self, session, &req).await,
            (false, "replication.json") => pages::replication::json(session, &req).await,
            (true, "retry") => pages::replication::retry(session, &req).await,
            _ => html::status_page(StatusCode::NOT_FOUND, "There is no such page."),
        }
    }
}

impl tern_server::WebConsole for Console {
    fn serve(&self, req: Request<Incoming>) -> futures::future::BoxFuture<'_, Response<Body>> {
        Box::pin(self.serve_on_behalf(req))
    }
}

/// Builds a region's console for `tern_server::start_region`.
#[must_use]
pub fn factory() -> Arc<tern_server::ConsoleFactory> {
    Arc::new(|cx: &tern_server::ConsoleContext| Ok(Arc::new(Console::new(cx)?) as Arc<dyn tern_server::WebConsole>))
}
