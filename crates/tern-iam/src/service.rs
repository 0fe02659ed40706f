//! The IAM of one region. IAM is global: one region of the deployment (the
//! authority, the registry region) keeps the directory in its document
//! store; every other region forwards IAM calls to it over HTTP and follows
//! its snapshots, so a change made through any endpoint holds everywhere
//! within a [`FOLLOW_PERIOD`]. Snapshots carry secret access keys, so they
//! travel sealed to the follower's transport key under the deployment's
//! peer secret, bound to both regions and to the follower's request nonce:
//! nobody without the peer secret can forge one, and an old one cannot be
//! replayed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tern_crypto::transport::{self, PUBLIC_KEY_LEN, TransportKey};
use tern_crypto::{Key256, wrap};
use tern_store::{DocStore, DocWrite};
use zeroize::Zeroizing;

use crate::error::{IamError, IamResult};
use crate::model::{CompiledPolicies, Directory, Owner};
use crate::policy::{Denial, Policy, PolicyType, Principal, Refusal, Request, Verdict};
use crate::sessions::SessionKeys;

/// How often a follower asks the authority for a newer directory.
pub const FOLLOW_PERIOD: Duration = Duration::from_millis(250);
const DOCS: &str = "iam";
const DIRECTORY: &str = "directory";
const SECRET_PURPOSE: &str = "iam secret";
const SNAPSHOT_CONTEXT: &str = "tern iam snapshot v2";
const TRANSPORT_PURPOSE: &[u8] = b"tern iam transport v1";
const STORE_PURPOSE: &[u8] = b"tern iam store v1";

/// A follower's request for the authority's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotRequest {
    /// The follower's region.
    pub follower: String,
    /// What the follower has: no answer unless the authority has newer.
    pub epoch: String,
    pub since: u64,
    /// The follower's transport public key (base64).
    pub recipient: String,
    /// Fresh for every request (hex); the answer is bound to it.
    pub nonce: String,
}

/// How a follower reaches the authority.
#[async_trait]
pub trait IamAuthority: Send + Sync {
    /// The authority's region.
    fn region(&self) -> &str;
    /// Runs an IAM query-API call at the authority as `caller`; returns
    /// the HTTP status and body to answer with.
    async fn forward(&self, caller: &Principal, params: &[(String, String)]) -> Result<(u16, Vec<u8>), String>;
    /// The authority's directory if it is newer than the request says,
    /// sealed to the request's recipient.
    async fn snapshot(&self, request: &SnapshotRequest) -> Result<Option<Vec<u8>>, String>;
}

enum Home {
    Authority { docs: Arc<dyn DocStore>, kek: Key256, writing: tokio::sync::Mutex<()> },
    Follower(Arc<dyn IamAuthority>),
}

/// The deployment's root credentials.
pub struct RootIdentity {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

/// A caller authenticated by access key: who it is and the secret that
/// signed its request.
pub struct Identity {
    pub principal: Principal,
    pub secret: Zeroizing<String>,
    /// When an STS session's credentials expire (Unix seconds).
    pub expires: Option<i64>,
}

/// The directory and its parsed policies, replaced together, with the
/// generation of the stored directory they are (an authority's).
struct State {
    directory: Arc<Directory>,
    policies: Arc<CompiledPolicies>,
    stored: i64,
}

impl State {
    fn new(directory: Directory, stored: i64) -> Self {
        let policies = Arc::new(CompiledPolicies::of(&directory));
        Self { directory: Arc::new(directory), policies, stored }
    }
}

pub struct Iam {
    pub(crate) account: String,
    region: String,
    root: RootIdentity,
    state: RwLock<State>,
    home: Home,
    pub(crate) sessions: SessionKeys,
    transport: TransportKey,
    peer_secret: Key256,
    /// When the last on-demand catch-up of a follower started: callers
    /// queue for one at a time, and one that started after a caller arrived
    /// serves it too, so a flood of unknown keys costs the authority one
    /// request at a time, never one per request.
    caught_up: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// The stored directory with its secrets opened, and its generation.
async fn load_directory(docs: &dyn DocStore, kek: &Key256) -> IamResult<(Directory, i64)> {
    let loaded = docs.load_docs(DOCS).await?;
    let directory = match loaded.docs.into_iter().find(|(id, _)| id == DIRECTORY) {
        Some((_, body)) => {
            let sealed: Directory =
                serde_json::from_slice(&body).map_err(|e| IamError::service_failure(e.to_string()))?;
            open_secrets(sealed, kek).map_err(|e| IamError::service_failure(format!("IAM store: {e}")))?
        }
        None => Directory::default(),
    };
    Ok((directory, loaded.generation))
}

fn seal_secrets(directory: &Directory, kek: &Key256) -> IamResult<Directory> {
    let mut sealed = directory.clone();
    for key in sealed.users.values_mut().flat_map(|u| u.access_keys.iter_mut()) {
        let purpose = format!("{SECRET_PURPOSE}|{}", key.id);
        let bytes = wrap::seal(kek, purpose.as_bytes(), key.secret.as_bytes())
            .map_err(|e| IamError::service_failure(e.to_string()))?;
        key.secret = Zeroizing::new(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes));
    }
    Ok(sealed)
}

fn open_secrets(mut directory: Directory, kek: &Key256) -> Result<Directory, String> {
    for key in directory.users.values_mut().flat_map(|u| u.access_keys.iter_mut()) {
        let purpose = format!("{SECRET_PURPOSE}|{}", key.id);
        let sealed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key.secret.as_bytes())
            .map_err(|e| e.to_string())?;
        let plain = Zeroizing::new(wrap::open(kek, purpose.as_bytes(), &sealed).map_err(|e| e.to_string())?);
        key.secret = Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(|e| e.to_string())?);
    }
    Ok(directory)
}

/// What binds one snapshot to its two regions and its request.
fn snapshot_context(authority: &str, request: &SnapshotRequest) -> Vec<u8> {
    format!("{SNAPSHOT_CONTEXT}|{authority}|{}|{}", request.follower, request.nonce).into_bytes()
}

fn new_epoch() -> String {
    let mut bytes = [0u8; 16];
    tern_crypto::fill_random(&mut bytes).expect("system random generator");
    hex::encode(bytes)
}

impl Iam {
    /// The authority of `region`: loads the directory from `docs`, secrets
    /// sealed under a key derived from `root_key`.
    pub async fn authority(
        account: &str,
        region: &str,
        root: RootIdentity,
        docs: Arc<dyn DocStore>,
        root_key: &Key256,
    ) -> IamResult<Self> {
        let kek = wrap::derive(root_key, STORE_PURPOSE);
        let (directory, stored) = load_directory(docs.as_ref(), &kek).await?;
        let home = Home::Authority { docs, kek, writing: tokio::sync::Mutex::new(()) };
        let iam = Self::new((account, region), root, directory, home, root_key);
        iam.state.write().expect("directory lock").stored = stored;
        if iam.directory().epoch.is_empty() {
            // Stored at once, so every front-end of the region (and every
            // follower) sees one line of directories.
            let set_epoch = |d: &mut Directory| {
                d.epoch = new_epoch();
                Ok(())
            };
            match iam.update(set_epoch).await {
                Err(e) if e.is_stale() => {}
                other => other?,
            }
        }
        Ok(iam)
    }

    /// A follower of `authority` in `region`; call [`Iam::follow`] to keep it current.
    #[must_use]
    pub fn follower(
        account: &str,
        region: &str,
        root: RootIdentity,
        authority: Arc<dyn IamAuthority>,
        root_key: &Key256,
    ) -> Self {
        Self::new((account, region), root, Directory::default(), Home::Follower(authority), root_key)
    }

    fn new(
        (account, region): (&str, &str),
        root: RootIdentity,
        directory: Directory,
        home: Home,
        root_key: &Key256,
    ) -> Self {
        let sessions = SessionKeys::new(&root.secret_access_key);
        let peer_secret = transport::peer_secret(&root.secret_access_key);
        Self {
            account: account.to_owned(),
            region: region.to_owned(),
            root,
            state: RwLock::new(State::new(directory, 0)),
            home,
            sessions,
            transport: TransportKey::from_seed(&wrap::derive(root_key, TRANSPORT_PURPOSE)),
            peer_secret,
            caught_up: tokio::sync::Mutex::new(None),
        }
    }

    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    #[must_use]
    pub fn directory(&self) -> Arc<Directory> {
        Arc::clone(&self.state.read().expect("directory lock").directory)
    }

    fn policies(&self) -> Arc<CompiledPolicies> {
        Arc::clone(&self.state.read().expect("directory lock").policies)
    }

    fn stored(&self) -> i64 {
        self.state.read().expect("directory lock").stored
    }

    pub(crate) fn authority_peer(&self) -> Option<&Arc<dyn IamAuthority>> {
        match &self.home {
            Home::Follower(peer) => Some(peer),
            Home::Authority { .. } => None,
        }
    }

    /// Applies `change` to a copy of the directory and stores it (authority
    /// only), unless another front-end of the region stored a change since
    /// this one last read it: then the answer is [`IamError::stale`], with
    /// the directory caught up for a retry.
    pub(crate) async fn update<T>(&self, change: impl FnOnce(&mut Directory) -> IamResult<T>) -> IamResult<T> {
        let Home::Authority { docs, kek, writing } = &self.home else {
            return Err(IamError::service_failure("IAM changes are made by the authority region."));
        };
        let _guard = writing.lock().await;
        let stored = self.stored();
        let mut directory = Directory::clone(&self.directory());
        let out = change(&mut directory)?;
        directory.generation += 1;
        let body = serde_json::to_vec(&seal_secrets(&directory, kek)?)
            .map_err(|e| IamError::service_failure(e.to_string()))?;
        match docs.write_docs(vec![DocWrite::put(DOCS, DIRECTORY, body)], &[(DOCS, stored)]).await {
            Ok(()) => {}
            Err(tern_store::StoreError::Conflict(_)) => {
                self.reload().await?;
                return Err(IamError::stale());
            }
            Err(e) => return Err(e.into()),
        }
        let mut state = self.state.write().expect("directory lock");
        // A reload that already moved past this change brought it along.
        if state.stored == stored {
            *state = State::new(directory, stored + 1);
        }
        Ok(out)
    }

    /// Reads the stored directory again if another front-end of the region
    /// changed it (authority side); says whether it had.
    pub(crate) async fn reload(&self) -> IamResult<bool> {
        let Home::Authority { docs, kek, .. } = &self.home else { return Ok(false) };
        // Nobody else writes an embedded store: what this process holds is it.
        if !docs.docs_shared() || docs.doc_generation(DOCS).await? == self.stored() {
            return Ok(false);
        }
        let (directory, stored) = load_directory(docs.as_ref(), kek).await?;
        let mut state = self.state.write().expect("directory lock");
        // Never back: a change of this process may have landed meanwhile.
        if stored > state.stored {
            *state = State::new(directory, stored);
        }
        Ok(true)
    }

    /// The directory sealed for the follower that asked, if newer than what
    /// it has (authority side; the caller has authenticated the request as
    /// the deployment's root).
    pub fn snapshot_for(&self, request: &SnapshotRequest) -> IamResult<Option<Vec<u8>>> {
        let directory = self.directory();
        if directory.epoch == request.epoch && directory.generation <= request.since {
            return Ok(None);
        }
        let recipient: [u8; PUBLIC_KEY_LEN] =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &request.recipient)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| IamError::validation("The recipient key is malformed."))?;
        let json = Zeroizing::new(serde_json::to_vec(&*directory).expect("a directory serializes"));
        transport::seal_to(&recipient, &self.peer_secret, &snapshot_context(&self.region, request), &json)
            .map(Some)
            .map_err(|e| IamError::service_failure(e.to_string()))
    }

    /// Fetches a newer directory: from the authority (follower side), or
    /// from the store other front-ends of the authority region write to.
    pub async fn refresh(&self) -> Result<(), String> {
        let Some(peer) = self.authority_peer() else {
            return self.reload().await.map(|_| ()).map_err(|e| e.to_string());
        };
        let current = self.directory();
        let mut nonce = [0u8; 16];
        tern_crypto::fill_random(&mut nonce).map_err(|e| e.to_string())?;
        let request = SnapshotRequest {
            follower: self.region.clone(),
            epoch: current.epoch.clone(),
            since: current.generation,
            recipient: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.transport.public()),
            nonce: hex::encode(nonce),
        };
        let Some(sealed) = peer.snapshot(&request).await? else { return Ok(()) };
        let json = Zeroizing::new(
            self.transport
                .open(&self.peer_secret, &snapshot_context(peer.region(), &request), &sealed)
                .map_err(|_| "the IAM snapshot is not authentic".to_owned())?,
        );
        let directory: Directory = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        let mut state = self.state.write().expect("directory lock");
        // Answers to concurrent requests may arrive out of order: never go
        // back within one line of directories.
        if directory.epoch != state.directory.epoch || directory.generation > state.directory.generation {
            *state = State::new(directory, 0);
        }
        Ok(())
    }

    /// Catches up with the authority (or, at the authority, with the other
    /// front-ends of its region) before refusing something (a key, a
    /// principal, a permission) that may be only a moment old; returns
    /// whether anything could have changed.
    pub async fn catch_up(&self) -> bool {
        let arrived = std::time::Instant::now();
        let mut last = self.caught_up.lock().await;
        if last.is_some_and(|started| started >= arrived) {
            return true;
        }
        *last = Some(std::time::Instant::now());
        if self.authority_peer().is_none() {
            return self.reload().await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "IAM directory not reloaded on demand");
                false
            });
        }
        if let Err(e) = self.refresh().await {
            tracing::debug!(error = %e, "IAM directory not refreshed on demand");
        }
        true
    }

    /// Keeps a follower current until the region stops.
    pub fn follow(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let iam = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FOLLOW_PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(iam) = iam.upgrade() else { return };
                if let Err(e) = iam.refresh().await {
                    tracing::debug!(error = %e, "IAM directory not refreshed");
                }
            }
        })
    }

    /// The caller behind `access_key_id` (root, an IAM user, or an STS
    /// session when `session_token` is given), with its secret.
    #[must_use]
    pub fn identity(&self, access_key_id: &str, session_token: Option<&str>) -> Option<Identity> {
        if let Some(token) = session_token {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let session = self.sessions.open(token, access_key_id, now)?;
            let principal = Principal { access_key_id: Some(access_key_id.to_owned()), ..session.principal() };
            let expires = Some(session.expires);
            return Some(Identity { principal, secret: session.secret, expires });
        }
        // Constant time even for the public half, so timing reveals nothing about near misses.
        if bool::from(access_key_id.as_bytes().ct_eq(self.root.access_key_id.as_bytes())) {
            return Some(Identity {
                principal: Principal {
                    access_key_id: Some(access_key_id.to_owned()),
                    ..Principal::root(&self.account)
                },
                secret: self.root.secret_access_key.clone(),
                expires: None,
            });
        }
        let directory = self.directory();
        let (key, Owner::User(user)) = directory.access_key(access_key_id)?;
        let principal = Principal {
            user_id: Some(user.id.clone()),
            access_key_id: Some(access_key_id.to_owned()),
            ..Principal::user(&self.account, &user.name)
        };
        Some(Identity { principal, secret: key.secret.clone(), expires: None })
    }

    /// What the principal's identity policies say about `request`; the
    /// account root is allowed everything its own account holds.
    #[must_use]
    pub fn identity_verdict(&self, request: &Request<'_>) -> Verdict {
        if request.principal.is_root() && request.principal.account == self.account {
            return Verdict { allowed: true, ..Verdict::default() };
        }
        let policies = self.policies();
        policies
            .of_principal(request.principal)
            .map_or_else(Verdict::default, |all| all.iter().fold(Verdict::default(), |v, p| v.and(p.evaluate(request))))
    }

    /// As [`Iam::authorize`], but a follower first catches up with the
    /// authority before it refuses: a principal or policy created a moment
    /// ago elsewhere must not be denied for this region's lag.
    pub async fn authorize_current(&self, request: &Request<'_>) -> Result<(), Denial> {
        self.authorize_current_with(request, None).await
    }

    /// As [`Iam::authorize_with`], catching up with the authority before it
    /// refuses, as [`Iam::authorize_current`] does.
    pub async fn authorize_current_with(
        &self,
        request: &Request<'_>,
        resource_policy: Option<&Policy>,
    ) -> Result<(), Denial> {
        let first = self.authorize_with(request, resource_policy);
        // Catching up never changes an anonymous caller's verdict.
        if first.is_err() && !request.principal.is_anonymous() && self.catch_up().await {
            return self.authorize_with(request, resource_policy);
        }
        first
    }

    /// Whether every user and role `arns` name exists; a follower catches
    /// up with the authority before it says no, as
    /// [`Self::authorize_current`] does.
    pub async fn principals_exist_current(&self, arns: &[&str]) -> bool {
        let all_exist = || {
            let directory = self.directory();
            arns.iter().all(|arn| directory.principal_exists(arn))
        };
        all_exist() || (self.catch_up().await && all_exist())
    }

    /// Whether an identity policy of `principal` reads a condition key
    /// starting with `prefix` (lower case): worth looking the key up for.
    #[must_use]
    pub fn identity_reads_keys(&self, principal: &Principal, prefix: &str) -> bool {
        self.policies().of_principal(principal).is_some_and(|all| all.iter().any(|p| p.reads_keys(prefix)))
    }

    /// Authorizes a request that only identity policies govern (IAM, STS).
    pub fn authorize(&self, request: &Request<'_>) -> Result<(), Denial> {
        self.authorize_with(request, None)
    }

    /// Authorizes a request within the account as AWS does when a resource
    /// (a bucket) may have a policy of its own: an explicit deny in either
    /// policy wins; else an allow in either suffices (a resource policy
    /// that names only the account leaves the decision to identity
    /// policies).
    pub fn authorize_with(&self, request: &Request<'_>, resource_policy: Option<&Policy>) -> Result<(), Denial> {
        let identity = self.identity_verdict(request);
        let resource = resource_policy.map(|p| p.evaluate(request)).unwrap_or_default();
        let refusal = if resource.denied {
            Refusal::ExplicitDeny(PolicyType::Resource)
        } else if identity.denied {
            Refusal::ExplicitDeny(PolicyType::Identity)
        } else if identity.allowed || resource.allowed {
            return Ok(());
        } else {
            Refusal::NoAllow(PolicyType::Identity)
        };
        Err(Denial::of(request, refusal))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// An authority that counts the snapshots asked of it and has nothing new.
    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
    }

    #[async_trait]
    impl IamAuthority for Counting {
        fn region(&self) -> &'static str {
            "us-east-1"
        }

        async fn forward(&self, _: &Principal, _: &[(String, String)]) -> Result<(u16, Vec<u8>), String> {
            Err("not asked here".to_owned())
        }

        async fn snapshot(&self, _: &SnapshotRequest) -> Result<Option<Vec<u8>>, String> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(None)
        }
    }

    /// Requests under unknown keys each make a follower catch up; a flood of
    /// them must cost the authority a request at a time, not one each.
    #[tokio::test]
    async fn a_flood_of_catch_ups_asks_the_authority_a_few_times() {
        let authority = Arc::new(Counting::default());
        let root = RootIdentity { access_key_id: "AKIDROOT".into(), secret_access_key: Zeroizing::new("s".into()) };
        let follower = Arc::new(Iam::follower(
            "000000000000",
            "eu-west-1",
            root,
            Arc::clone(&authority) as Arc<dyn IamAuthority>,
            &Key256::from_bytes([7; 32]),
        ));
        let flood: Vec<_> = (0..200)
            .map(|_| {
                let follower = Arc::clone(&follower);
                tokio::spawn(async move { follower.catch_up().await })
            })
            .collect();
        for caught_up in flood {
            assert!(caught_up.await.unwrap());
        }
        let asked = authority.asked.load(Ordering::SeqCst);
        assert!(asked <= 2, "200 catch-ups asked the authority {asked} times");
    }
}
