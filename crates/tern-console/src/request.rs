//! A signed-in request, read and checked before any page sees it: its
//! query, its form, and for a change, that it comes from the console's own
//! page (same origin, and the session's CSRF token).

use std::collections::BTreeMap;

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use subtle::ConstantTimeEq as _;

use crate::html::Refusal;
use crate::session::Session;

/// The largest form the console reads (uploads come as a body of their own).
const MAX_FORM: usize = 64 * 1024;
pub const CSRF_HEADER: &str = "x-tern-csrf";

pub struct ConsoleRequest {
    pub method: Method,
    pub headers: http::HeaderMap,
    params: BTreeMap<String, String>,
    /// An upload's bytes, unread.
    pub body: Option<Incoming>,
}

impl ConsoleRequest {
    pub async fn read(req: Request<Incoming>, session: &Session) -> Result<Self, Refusal> {
        let (parts, body) = req.into_parts();
        let mut params = parse(parts.uri.query().unwrap_or_default());
        let mut req = Self { method: parts.method, headers: parts.headers, params: BTreeMap::new(), body: Some(body) };
        if req.method == Method::POST {
            if !same_origin(&req.headers) {
                return Err(Refusal::new(StatusCode::FORBIDDEN, "Changes come only from the console's own pages."));
            }
            let token = if is_form(&req.headers) {
                let form = read_form(req.body.take().expect("the body is unread")).await?;
                let token = form.get("csrf").cloned();
                params.extend(form);
                token
            } else {
                req.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
            };
            let matches = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
            if !matches {
                return Err(Refusal::new(StatusCode::FORBIDDEN, "The page was stale: reload it and try again."));
            }
        }
        req.params = params;
        Ok(req)
    }

    /// A parameter of the query or the form.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter that must be there and not be empty.
    pub fn required(&self, name: &str) -> Result<&str, Refusal> {
        self.param(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, format!("The request names no {name}.")))
    }
}

pub fn parse(text: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Browsers name where a request comes from: a change must come from the
/// page's own origin (SameSite=Strict already keeps other sites' cookies
/// off; this refuses what slips through, such as a sibling subdomain).
pub fn same_origin(headers: &http::HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|site| site != "same-origin") {
        return false;
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

pub async fn read_form(body: Incoming) -> Result<BTreeMap<String, String>, Refusal> {
    let limited = http_body_util::Limited::new(body, MAX_FORM);
    match limited.collect().await {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes.to_bytes()))),
        Err(_) => Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")),
    }
}
