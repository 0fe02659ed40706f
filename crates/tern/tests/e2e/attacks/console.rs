//! The web console and the replication routes it calls, attacked over
//! raw HTTP: guessed and stolen-after-logout sessions, changes without the
//! session's CSRF token or from another origin, markup smuggled in through
//! object keys, and identities reaching replication state IAM does not
//! give them.

use serde_json::json;

use super::{policy, user_allowed};
use crate::replication::versioned;
use crate::{EAST, one_region};

const CONSOLE: &str = "/_tern/console/";
const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> String {
    let pairs = pairs.iter().map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)));
    pairs.collect::<Vec<_>>().join("&")
}

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    /// Signs in as `access_key`/`secret`; the session cookie the console set.
    async fn sign_in(base: &str, access_key: &str, secret: &str) -> Result<Self, reqwest::StatusCode> {
        Self::sign_in_from(base, access_key, secret, "127.0.0.1".parse().unwrap()).await
    }

    /// The same, from the client address `from` (any of 127/8 reaches loopback).
    async fn sign_in_from(
        base: &str,
        access_key: &str,
        secret: &str,
        from: std::net::IpAddr,
    ) -> Result<Self, reqwest::StatusCode> {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).local_address(from).build().unwrap();
        let answer = http
            .post(format!("{base}{CONSOLE}login"))
            .header("content-type", FORM)
            .body(form(&[("access_key_id", access_key), ("secret_access_key", secret)]))
            .send()
            .await
            .unwrap();
        let cookie = answer.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
        match cookie {
            Some(cookie) if answer.status() == 303 => {
                let pair = cookie.split(';').next().unwrap().to_owned();
                Ok(Self { http, base: base.to_owned(), cookie: pair })
            }
            _ => Err(answer.status()),
        }
    }

    async fn get(&self, page: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let answer = self.http.get(format!("{}{CONSOLE}{page}", self.base)).header("cookie", &self.cookie).send().await;
        let answer = answer.unwrap();
        let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
        (status, answer.text().await.unwrap(), headers)
    }

    async fn post(&self, page: &str, form: &[(&str, &str)], origin: Option<&str>) -> (u16, String) {
        let mut request = self.http.post(format!("{}{CONSOLE}{page}", self.base)).header("cookie", &self.cookie);
        request = request.header("content-type", FORM).body(self::form(form));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// The session's CSRF token, as its pages carry it.
    async fn csrf(&self) -> String {
        let (_, page, _) = self.get("buckets").await;
        let start = page.find(r#"name="csrf" value=""#).expect("a form with the token") + 19;
        page[start..start + 64].to_owned()
    }
}

#[tokio::test]
async fn console_sessions_need_their_cookie_their_token_and_their_origin() {
    let tern = one_region().await;
    let base = tern.endpoint(EAST);
    assert_eq!(
        Browser::sign_in(&base, tern_testkit::ACCESS_KEY, "wrong").await.err(),
        Some(reqwest::StatusCode::UNAUTHORIZED)
    );
    let me = Browser::sign_in(&base, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY).await.unwrap();
    let (status, page, headers) = me.get("buckets").await;
    assert_eq!(status, 200, "{page}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    // A guessed session is no session.
    let guessed =
        Browser { http: me.http.clone(), base: base.clone(), cookie: format!("tern_console={}", "0".repeat(64)) };
    let (status, _, headers) = guessed.get("buckets").await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, CONSOLE));

    // A change needs the session's token, and the page's own origin.
    let token = me.csrf().await;
    let (status, text) = me.post("buckets", &[("bucket", "no-token"), ("region", EAST)], None).await;
    assert_eq!(status, 403, "{text}");
    let forged = [("bucket", "other-origin"), ("region", EAST), ("csrf", token.as_str())];
    assert_eq!(me.post("buckets", &forged, Some("https://evil.example")).await.0, 403);
    let made = [("bucket", "made-here"), ("region", EAST), ("csrf", token.as_str())];
    assert_eq!(me.post("buckets", &made, Some(&base)).await.0, 303);
    let buckets = tern.s3(EAST).list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["made-here"], "only the change with token and origin");

    // Markup in a key is shown as text.
    let key = "<img src=x onerror=alert(1)>.txt";
    tern.s3(EAST).put_object().bucket("made-here").key(key).body(b"x".to_vec().into()).send().await.unwrap();
    let (_, page, _) = me.get("bucket?bucket=made-here").await;
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;.txt") && !page.contains("<img"), "{page}");

    // After sign-out the cookie opens nothing.
    assert_eq!(me.post("logout", &[("csrf", token.as_str())], None).await.0, 303);
    assert_eq!(me.get("buckets").await.0, 303);
}

#[tokio::test]
async fn replication_state_is_for_whom_iam_allows_it() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "mine", EAST).await;
    versioned(&tern.s3(EAST), "theirs", EAST).await;
    let stranger = user_allowed(&tern, "stranger", &["s3:ListAllMyBuckets"], "*").await;
    let watcher = user_allowed(&tern, "watcher", &["s3:GetReplicationConfiguration"], "arn:aws:s3:::mine").await;
    let statements = json!([{"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:PutReplicationConfiguration"],
                             "Resource": "arn:aws:s3:::mine"}]);
    let operator = tern.user("operator", &policy(&statements)).await.unwrap();
    let call = |creds, method, path: &'static str| {
        let tern = &tern;
        async move { tern.call_as(creds, EAST, "s3", (method, path), &[], Vec::new()).await.unwrap().status }
    };
    assert_eq!(call(&stranger, "GET", "/_tern/replication/mine").await, 403);
    assert_eq!(call(&watcher, "GET", "/_tern/replication/mine").await, 200);
    assert_eq!(call(&watcher, "GET", "/_tern/replication/mine/check").await, 403, "the check is the root's");
    assert_eq!(call(&watcher, "GET", "/_tern/replication/theirs").await, 403);
    assert_eq!(call(&watcher, "POST", "/_tern/replication/mine/retry").await, 403);
    assert_eq!(call(&operator, "POST", "/_tern/replication/mine/retry").await, 200);
}

#[tokio::test]
async fn the_console_calls_with_its_users_address_not_its_own() {
    let tern = one_region().await;
    versioned(&tern.s3(EAST), "seen", EAST).await;
    // Allowed to list, but only from 127.0.0.2.
    let statements = json!([
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.2/32"}}},
    ]);
    let user = tern.user("from-two", &policy(&statements)).await.unwrap();
    let base = tern.endpoint(EAST);
    let there =
        Browser::sign_in_from(&base, &user.access_key, &user.secret, "127.0.0.2".parse().unwrap()).await.unwrap();
    let (_, page, _) = there.get("buckets").await;
    assert!(page.contains(">seen<") && !page.contains("ListBuckets: AccessDenied"), "{page}");
    // The console's own calls leave from 127.0.0.1: its user's elsewhere is what counts.
    let here = Browser::sign_in(&base, &user.access_key, &user.secret).await.unwrap();
    let (_, page, _) = here.get("buckets").await;
    assert!(page.contains("ListBuckets: AccessDenied") && !page.contains(">seen<"), "{page}");
}
