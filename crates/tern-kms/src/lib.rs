//! The KMS of one region: an AWS-compatible key service (TrentService over
//! JSON 1.1) with multi-region keys whose material travels between regions
//! sealed to the receiving region's transport key.
//!
//! - [`Kms`] is the service; [`Kms::handle`] answers one operation, and the
//!   typed methods in [`ops::crypto`] serve S3's server-side encryption.
//! - [`store`] keeps keys and aliases, material sealed under the root key.
//! - [`KmsPeers`] is how this region reaches the others (HTTP in
//!   `tern-server`), so nothing here knows about sockets.

// AWS operation and member names (GenerateDataKey, KeyId) fill the docs here.
#![allow(clippy::doc_markdown)]

mod access;
mod challenges;
pub mod error;
pub mod ids;
mod maintenance;
pub mod model;
pub mod ops;
pub mod store;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use tern_crypto::Key256;
use tern_crypto::transport::TransportKey;
use tern_iam::Iam;
use tern_iam::policy::Principal;
use tern_store::DocStore;

pub use error::{KmsError, KmsResult};
use ids::{KeyRef, alias_arn, key_arn, parse_key_only, parse_key_ref};
use model::KeyRecord;
use store::{KeyStore, LiveKey};

/// Who is calling, as authenticated by the region's front door.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// Set when a service (S3) calls on the principal's behalf:
    /// `s3.<region>.amazonaws.com`, for `kms:ViaService`.
    pub via_service: Option<String>,
    /// The resource a service acts for, for `aws:SourceArn`.
    pub source_arn: Option<String>,
}

impl Caller {
    #[must_use]
    pub fn new(principal: Principal) -> Self {
        Self { principal, via_service: None, source_arn: None }
    }

    /// The deployment's root identity of `account`.
    #[must_use]
    pub fn root(account: &str) -> Self {
        Self::new(Principal::root(account))
    }

    /// The same principal, calling through `service` (e.g.
    /// `s3.us-east-1.amazonaws.com`), which reaches KMS over TLS and, as
    /// on AWS, leaves `aws:SourceIp` out.
    #[must_use]
    pub fn via(mut self, service: String) -> Self {
        self.via_service = Some(service);
        self.principal.origin = tern_iam::policy::Origin { secure_transport: true, ..Default::default() };
        self
    }

    #[must_use]
    pub fn is_root(&self) -> bool {
        self.principal.is_root()
    }

    /// The global condition keys of the caller's request.
    #[must_use]
    pub fn context(&self) -> tern_iam::policy::RequestContext {
        tern_iam::policy::RequestContext::of(&self.principal)
    }
}

/// The other regions of the deployment, as this region's KMS reaches them.
#[async_trait]
pub trait KmsPeers: Send + Sync {
    /// Whether `region` is another region of this deployment.
    fn knows(&self, region: &str) -> bool;
    /// Calls Tern's internal KMS operation `operation` of `region` (see
    /// [`Kms::handle_internal`]) as the deployment's root.
    async fn call(&self, region: &str, operation: &str, body: Value) -> KmsResult<Value>;
}

/// Told of every cryptographic call (Encrypt, Decrypt, GenerateDataKey, …)
/// once it is decided, so the region can count and audit them.
pub trait KmsObserver: Send + Sync {
    fn cryptographic_call(&self, call: &CryptoCall<'_>);
    /// KMS itself acted on a key with time: `DeleteKey` when a deletion
    /// window ended, `RotateKey` when an automatic rotation fell due.
    fn service_event(&self, _name: &str, _key_arn: &str) {}
}

/// One cryptographic call, as observers are told of it. Never the
/// plaintext, the data key or the ciphertext.
pub struct CryptoCall<'a> {
    /// The IAM action it was authorized as (`GenerateDataKey`, `ReEncryptFrom`, …).
    pub action: &'a str,
    /// `caller.via_service` is set when S3 called on the caller's behalf.
    pub caller: &'a Caller,
    /// The key's ARN in this region; for a refused call, the key it named,
    /// if that exists here.
    pub key_arn: Option<&'a str>,
    pub context: &'a ops::crypto::Context,
    pub error: Option<&'a KmsError>,
}

/// The purpose from which a region's transport key pair is derived.
const TRANSPORT_PURPOSE: &[u8] = b"tern kms transport v1";

/// What a region's KMS works with: the deployment's IAM (identities and
/// their policies), the other regions, and the region's metrics.
pub struct KmsLinks {
    pub iam: Arc<Iam>,
    pub peers: Arc<dyn KmsPeers>,
    pub observer: Arc<dyn KmsObserver>,
    /// The secret every region of the deployment shares, under which key
    /// material travels ([`tern_crypto::transport::peer_secret`]).
    pub peer_secret: Key256,
}

/// Runs of a request whose change lost a race with another front-end.
pub(crate) const STALE_ATTEMPTS: u32 = 5;

pub struct Kms {
    region: String,
    account: String,
    store: KeyStore,
    peers: Arc<dyn KmsPeers>,
    observer: Arc<dyn KmsObserver>,
    iam: Arc<Iam>,
    transport: TransportKey,
    peer_secret: Key256,
    challenges: challenges::Challenges,
    /// Serializes the first-use creation of AWS managed keys.
    managed: tokio::sync::Mutex<()>,
    /// MRK pushes that failed, as (key id, region), for the maintenance loop.
    stale: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl Kms {
    /// Opens the region's key store, sealed under keys derived from `root_key`.
    pub async fn open(region: &str, docs: Arc<dyn DocStore>, root_key: &Key256, links: KmsLinks) -> KmsResult<Self> {
        let KmsLinks { iam, peers, observer, peer_secret } = links;
        let account = iam.account().to_owned();
        let kek = tern_crypto::wrap::derive(root_key, store::KEY_STORE_PURPOSE);
        let transport = TransportKey::from_seed(&tern_crypto::wrap::derive(root_key, TRANSPORT_PURPOSE));
        Ok(Self {
            region: region.to_owned(),
            account,
            store: KeyStore::open(docs, kek).await?,
            peers,
            observer,
            iam,
            transport,
            peer_secret,
            challenges: challenges::Challenges::default(),
            managed: tokio::sync::Mutex::default(),
            stale: std::sync::Mutex::default(),
        })
    }

    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Answers one TrentService operation with its JSON response.
    /// Another front-end's change to a key (a policy, a state) is seen by
    /// the next request here: a look at the store's generations first, two
    /// small reads, which a request to the KMS API easily affords. Without
    /// that look (the store unreachable) nothing is answered from memory
    /// that may be out of date.
    pub async fn handle(&self, caller: &Caller, operation: &str, body: &[u8]) -> KmsResult<Value> {
        self.store.refresh().await?;
        let mut attempts = 1;
        loop {
            match ops::dispatch(self, caller, operation, body).await {
                Err(e) if attempts < STALE_ATTEMPTS && e.may_be_behind() && self.caught_up(&e).await => attempts += 1,
                other => return other,
            }
        }
    }

    /// Catches up with what other front-ends of the region changed in the
    /// key store; says whether they had (for S3, before it repeats a use of
    /// keys that was refused).
    pub async fn catch_up(&self) -> bool {
        self.store.refresh().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the key store could not catch up");
            false
        })
    }

    /// Whether a request refused with `refusal` may fare differently now:
    /// it lost a race with another front-end (the view is already fresh),
    /// or the view was behind and has caught up.
    async fn caught_up(&self, refusal: &KmsError) -> bool {
        refusal.is_stale() || self.catch_up().await
    }

    /// Answers one of Tern's internal operations between regions (MRK
    /// pushes, replication checks). Never reachable through [`Kms::handle`]:
    /// the caller must have authenticated the request as the deployment's
    /// root on Tern's internal route.
    pub async fn handle_internal(&self, operation: &str, body: &[u8]) -> KmsResult<Value> {
        ops::multi_region::internal(self, operation, body).await
    }

    fn arn(&self, id: &str) -> String {
        key_arn(&self.region, &self.account, id)
    }

    fn alias_arn(&self, name: &str) -> String {
        alias_arn(&self.region, &self.account, name)
    }

    fn key_or_not_found(&self, id: &str) -> KmsResult<Arc<LiveKey>> {
        self.store.key(id).ok_or_else(|| KmsError::not_found(format!("Key '{}' does not exist", self.arn(id))))
    }

    /// Resolves a `KeyId` that may be an alias (cryptographic calls, DescribeKey).
    fn resolve(&self, key_id: &str) -> KmsResult<Arc<LiveKey>> {
        match parse_key_ref(key_id, &self.region, &self.account)? {
            KeyRef::Key(id) => self.key_or_not_found(&id),
            KeyRef::Alias(name) => {
                let alias = self
                    .store
                    .alias(&name)
                    .ok_or_else(|| KmsError::not_found(format!("Alias {} is not found.", self.alias_arn(&name))))?;
                self.key_or_not_found(&alias.target)
            }
        }
    }

    /// The key `key_id` names (id, ARN, alias or alias ARN) as its ARN here,
    /// with the regions of its multi-Region family (primary first; `None`
    /// for a single-Region key), for diagnoses that only read.
    pub fn family(&self, key_id: &str) -> KmsResult<(String, Option<Vec<String>>)> {
        let key = self.resolve(key_id)?;
        let regions =
            key.record.shared.multi_region.as_ref().map(|mr| {
                std::iter::once(mr.primary_region.clone()).chain(mr.replica_regions.iter().cloned()).collect()
            });
        Ok((self.arn(&key.record.id), regions))
    }

    /// Resolves a `KeyId` of a management call (key id or key ARN only).
    fn resolve_key_only(&self, key_id: &str) -> KmsResult<Arc<LiveKey>> {
        self.key_or_not_found(&parse_key_only(key_id, &self.region, &self.account)?)
    }

    /// KeyMetadata as DescribeKey, CreateKey and ReplicateKey return it.
    fn metadata(&self, key: &KeyRecord) -> Value {
        let mut meta = json!({
            "AWSAccountId": self.account,
            "KeyId": key.id,
            "Arn": self.arn(&key.id),
            "CreationDate": key.created,
            "Enabled": key.state == model::KeyState::Enabled,
            "Description": key.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": key.state.as_str(),
            "Origin": "AWS_KMS",
            "KeyManager": if key.managed { "AWS" } else { "CUSTOMER" },
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": key.shared.multi_region.is_some(),
        });
        if let Some(date) = key.deletion_date {
            meta["DeletionDate"] = json!(date);
        }
        if let Some(days) = key.pending_window_days.filter(|_| key.state.is_pending_deletion()) {
            meta["PendingDeletionWindowInDays"] = json!(days);
        }
        if let Some(mr) = &key.shared.multi_region {
            let entry = |region: &str| json!({"Arn": key_arn(region, &self.account, &key.id), "Region": region});
            let kind = if mr.primary_region == self.region { "PRIMARY" } else { "REPLICA" };
            meta["MultiRegionConfiguration"] = json!({
                "MultiRegionKeyType": kind,
                "PrimaryKey": entry(&mr.primary_region),
                "ReplicaKeys": mr.replica_regions.iter().map(|r| entry(r)).collect::<Vec<_>>(),
            });
        }
        meta
    }
}
