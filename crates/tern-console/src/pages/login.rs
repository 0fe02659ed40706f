//! Signing in and out. The key pair is checked by this region's STS
//! (`GetCallerIdentity`, a real `SigV4` request): the console decides
//! nothing about credentials itself.

use std::sync::Arc;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use maud::html;
use s3s::Body;

use crate::session::{Session, set_cookie};
use crate::{Console, PREFIX, html};

pub fn form(refused: Option<&str>) -> Response<Body> {
    let page = html::sign_in_document(&html! {
        form.login method="post" action={ (PREFIX) "login" } {
            h1 { "Sign in to Tern" }
            @if let Some(why) = refused {
                p.refusal role="alert" { (why) }
            }
            label for="access-key" { "Access key ID" }
            input #access-key type="text" name="access_key_id" autocomplete="username" required autofocus;
            label for="secret-key" { "Secret access key" }
            input #secret-key type="password" name="secret_access_key" autocomplete="current-password" required;
            p { button type="submit" { "Sign in" } }
            p.muted { "The key pair stays on the server for this session, which ends after an hour." }
        }
    });
    let status = if refused.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    html::html_response(status, page)
}

pub async fn submit(console: &Console, req: Request<Incoming>) -> Response<Body> {
    // No other site may sign a visitor in (as its own identity).
    if !crate::request::same_origin(req.headers()) {
        return html::status_page(StatusCode::FORBIDDEN, "Sign in from the console's own page.");
    }
    let form = match crate::request::read_form(req.into_body()).await {
        Ok(form) => form,
        Err(refusal) => return refusal.page(),
    };
    let (Some(id), Some(secret)) = (form.get("access_key_id"), form.get("secret_access_key")) else {
        return self::form(Some("Give an access key ID and its secret."));
    };
    let Ok(_permit) = console.sign_ins.acquire().await else { return self::form(Some("Try again.")) };
    let principal = match console.clients.identify(id.trim(), secret.trim()).await {
        Ok(principal) => principal,
        Err(why) => return self::form(Some(&format!("The key pair was refused ({why})."))),
    };
    let session = console.sessions.open(principal, console.clients.for_user(id.trim(), secret.trim()));
    signed_in(&session, console.secure)
}

fn signed_in(session: &Arc<Session>, secure: bool) -> Response<Body> {
    let mut response = html::redirect(&format!("{PREFIX}overview"));
    if let Ok(cookie) = header::HeaderValue::from_str(&set_cookie(Some(&session.id), secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

pub fn logout(console: &Console, session: &Session) -> Response<Body> {
    console.sessions.close(&session.id);
    let mut response = html::redirect(PREFIX);
    if let Ok(cookie) = header::HeaderValue::from_str(&set_cookie(None, console.secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
