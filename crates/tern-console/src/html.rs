//! The page frame, the console's two static files, and the responses every
//! page answers with. Every response forbids framing, sniffing, caching and
//! any script or style not served from here.

use http::{Response, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use s3s::Body;

use crate::PREFIX;
use crate::session::Session;

pub const CSS: &str = include_str!("../assets/console.css");
pub const JS: &str = include_str!("../assets/console.js");

/// The sections of the console, as the navigation names them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Buckets,
    Keys,
}

fn respond(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

pub fn html_response(status: StatusCode, page: Markup) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", Body::from(page.into_string()))
}

pub fn json_response(value: &serde_json::Value) -> Response<Body> {
    respond(StatusCode::OK, "application/json", Body::from(value.to_string()))
}

pub fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    respond(StatusCode::OK, content_type, Body::from(text.to_owned()))
}

/// A `303 See Other` to `to`, a path of the console.
pub fn redirect(to: &str) -> Response<Body> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", Body::empty());
    if let Ok(location) = header::HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Why a request gets no page of its own: the status, and what to tell.
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn page(self) -> Response<Body> {
        status_page(self.status, &self.message)
    }
}

/// A page of its own for what went wrong, outside the frame.
pub fn status_page(status: StatusCode, message: &str) -> Response<Body> {
    let page = document(
        status.canonical_reason().unwrap_or("Error"),
        &html! {
            main id="main" {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or_default()) }
                p role="alert" { (message) }
                p { a href=(PREFIX) { "Back to the console" } }
            }
        },
    );
    html_response(status, page)
}

fn document(title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tern" }
                link rel="stylesheet" href={ (PREFIX) "static/console.css" };
                script src={ (PREFIX) "static/console.js" } defer {}
            }
            body { (body) }
        }
    }
}

/// A signed-in page: the navigation, who is signed in, and `content`.
pub fn page(
    session: &Session,
    region: &str,
    section: Option<Section>,
    title: &str,
    content: &Markup,
) -> Response<Body> {
    let link = |target: Section, path: &str, name: &str| {
        html! {
            @if section == Some(target) {
                a href={ (PREFIX) (path) } aria-current="page" { (name) }
            } @else {
                a href={ (PREFIX) (path) } { (name) }
            }
        }
    };
    let body = html! {
        a.skip href="#main" { "Skip to content" }
        header {
            span.brand { "Tern" }
            span.region title="The region serving this console" { (region) }
            nav aria-label="Main" {
                (link(Section::Overview, "overview", "Deployment"))
                (link(Section::Buckets, "buckets", "Buckets"))
                (link(Section::Keys, "keys", "KMS keys"))
            }
            form.signout method="post" action={ (PREFIX) "logout" } {
                (csrf_field(session))
                span.who { (session.principal) }
                button type="submit" { "Sign out" }
            }
        }
        main id="main" tabindex="-1" {
            h1 { (title) }
            (content)
        }
    };
    html_response(StatusCode::OK, document(title, &body))
}

/// The hidden field every form of a signed-in page carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The sign-in page, outside the frame.
pub fn sign_in_document(content: &Markup) -> Markup {
    document("Sign in", &html! { main id="main" { (content) } })
}

/// What an AWS call answered instead of the data, shown where the data would be.
pub fn refusal(what: &str, error: &str) -> Markup {
    html! { p.refusal role="alert" { (what) ": " (error) } }
}
