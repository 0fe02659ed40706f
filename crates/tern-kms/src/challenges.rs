//! One-time challenges for MRK pushes: a region hands a fresh nonce to a
//! peer that asks for its transport key, and opens key material only if it
//! is sealed to that nonce, once. A captured push can therefore not be
//! replayed (say, to resurrect a replica after its deletion).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a challenge may wait for its push.
const LIFETIME: Duration = Duration::from_mins(1);
/// Outstanding challenges at most; only the deployment's root may ask for
/// them, so this bounds memory against a misbehaving peer, not the public.
const MAX_OUTSTANDING: usize = 4096;

#[derive(Default)]
pub(crate) struct Challenges {
    outstanding: Mutex<HashMap<String, Instant>>,
}

impl Challenges {
    /// A fresh challenge (hex), or `None` if too many are outstanding.
    pub fn issue(&self) -> Option<String> {
        let mut bytes = [0u8; 16];
        tern_crypto::fill_random(&mut bytes).ok()?;
        let nonce = hex::encode(bytes);
        let mut outstanding = self.outstanding.lock().expect("challenge lock");
        let now = Instant::now();
        outstanding.retain(|_, issued| now.duration_since(*issued) < LIFETIME);
        if outstanding.len() >= MAX_OUTSTANDING {
            return None;
        }
        outstanding.insert(nonce.clone(), now);
        Some(nonce)
    }

    /// Uses up `nonce`: true only the first time, and only while it is fresh.
    pub fn redeem(&self, nonce: &str) -> bool {
        let issued = self.outstanding.lock().expect("challenge lock").remove(nonce);
        issued.is_some_and(|at| at.elapsed() < LIFETIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_redeemed_once() {
        let challenges = Challenges::default();
        let nonce = challenges.issue().unwrap();
        assert!(challenges.redeem(&nonce));
        assert!(!challenges.redeem(&nonce));
        assert!(!challenges.redeem("never issued"));
    }
}
