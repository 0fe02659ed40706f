//! Bodies read before their signature can be checked: KMS, IAM and STS
//! clients sign a body without naming its hash, so the signature holds or
//! fails only once the body is in. An access key id is no secret, so anyone
//! may start such reads under anyone's key: each key, from each client
//! address, reads a few at once and the rest wait their turn. A flood from
//! one address queues behind itself, not in front of the key's owner.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies one key reads at once from one client address.
const PER_READER: usize = 4;

/// Who is reading: an access key, from an address.
type Reader = (String, IpAddr);

/// The readers with bodies in flight (or waiting), each with its places.
#[derive(Default)]
pub struct Unverified {
    readers: Mutex<HashMap<Reader, Arc<Semaphore>>>,
}

/// A place to read one body; dropping it frees the place.
pub struct Place<'a> {
    owner: &'a Unverified,
    reader: Reader,
    gate: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Unverified {
    /// A place for `key` reading from `client`, waiting at most `wait` for one.
    pub async fn enter(&self, key: &str, client: IpAddr, wait: Duration) -> Option<Place<'_>> {
        let reader = (key.to_owned(), client);
        let gate =
            Arc::clone(self.lock().entry(reader.clone()).or_insert_with(|| Arc::new(Semaphore::new(PER_READER))));
        // The place exists before the wait, so a wait given up still tidies the map.
        let mut place = Place { owner: self, reader, gate, permit: None };
        let permit = tokio::time::timeout(wait, Arc::clone(&place.gate).acquire_owned()).await.ok()?.ok()?;
        place.permit = Some(permit);
        Some(place)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Reader, Arc<Semaphore>>> {
        self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn readers(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.permit = None;
        let mut readers = self.owner.lock();
        // Held by the map and this place only: nobody reads or waits under it.
        if Arc::strong_count(&self.gate) == 2 {
            readers.remove(&self.reader);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const SHORT: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn a_flood_from_one_address_waits_behind_itself() {
        let unverified = Unverified::default();
        let mut flood = Vec::new();
        for _ in 0..PER_READER {
            flood.push(unverified.enter("AKIDVICTIM", THERE, SHORT).await.expect("a place"));
        }
        assert!(
            unverified.enter("AKIDVICTIM", THERE, SHORT).await.is_none(),
            "the flood's next read waits, then gives up"
        );
        let owner = unverified.enter("AKIDVICTIM", HERE, SHORT).await;
        assert!(owner.is_some(), "the key's owner, elsewhere, is not kept waiting");
        drop(owner);
        flood.pop();
        assert!(unverified.enter("AKIDVICTIM", THERE, SHORT).await.is_some(), "a freed place is taken again");
        drop(flood);
        assert_eq!(unverified.readers(), 0, "nothing is kept for readers gone");
    }
}
