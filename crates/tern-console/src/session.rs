//! Who is signed in, kept on the server. The browser holds a random id in
//! an `HttpOnly`, SameSite=Strict cookie; the access key pair stays in this
//! process's memory, inside the session's SDK clients, and is gone when the
//! session ends or expires. Each session has its own CSRF token, which
//! every change must carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt as _;

use crate::clients::Clients;

pub const COOKIE: &str = "tern_console";
/// How long a session lasts after sign-in, as AWS's console's default.
pub const LIFETIME: Duration = Duration::from_hours(1);
/// Only signed-in users make sessions; still, memory is bounded, and no
/// one identity can push the others' sessions out.
const MAX_SESSIONS: usize = 4096;
const MAX_PER_PRINCIPAL: usize = 16;

pub struct Session {
    pub id: String,
    pub csrf: String,
    /// The signed-in identity's ARN, as STS named it.
    pub principal: String,
    pub clients: Clients,
    expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Arc<Session>>>,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

impl Sessions {
    pub fn open(&self, principal: String, clients: Clients) -> Arc<Session> {
        let now = Instant::now();
        let session =
            Arc::new(Session { id: random_token(), csrf: random_token(), principal, clients, expires: now + LIFETIME });
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, s| s.expires > now);
        let own: Vec<&Arc<Session>> = live.values().filter(|s| s.principal == session.principal).collect();
        let evict = if own.len() >= MAX_PER_PRINCIPAL {
            own.into_iter().min_by_key(|s| s.expires)
        } else if live.len() >= MAX_SESSIONS {
            live.values().min_by_key(|s| s.expires)
        } else {
            None
        };
        if let Some(oldest) = evict.map(|s| s.id.clone()) {
            live.remove(&oldest);
        }
        live.insert(session.id.clone(), Arc::clone(&session));
        session
    }

    /// The live session the request's cookie names.
    pub fn of(&self, headers: &http::HeaderMap) -> Option<Arc<Session>> {
        let id = session_id(headers)?;
        let mut live = self.live.lock().expect("sessions lock");
        match live.get(id) {
            Some(session) if session.expires > Instant::now() => Some(Arc::clone(session)),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.live.lock().expect("sessions lock").remove(id);
    }
}

/// The session id in the request's `Cookie` headers.
fn session_id(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The `Set-Cookie` value that keeps `id` (or, with `None`, removes it).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let (value, age) = id.map_or(("", 0), |id| (id, LIFETIME.as_secs()));
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path={}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}", crate::PREFIX)
}
