//! The key store of one region: every key and alias in memory for fast
//! cryptographic calls, written through to the region's document store.
//!
//! Key material rests only sealed (AES-256-GCM) under the key-store key,
//! which is derived from the region's root key; the purpose label binds each
//! sealed material to its key id and version, so sealed blobs cannot be
//! swapped between keys. Writers are serialized; readers never wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tern_crypto::Key256;
use tern_crypto::wrap;
use tern_iam::policy::Policy;
use tern_store::{DocStore, DocWrite};

use crate::error::{KmsError, KmsResult};
use crate::model::{AliasRecord, KeyRecord, SealedMaterial};
use crate::wire::now;

const KEYS: &str = "kms-keys";
const ALIASES: &str = "kms-aliases";
/// The purpose from which the key-store key is derived from the root key.
pub const KEY_STORE_PURPOSE: &[u8] = b"tern kms key store v1";

/// A key with its material unsealed and its policy parsed, as the
/// cryptographic calls use it.
#[derive(Debug, Clone)]
pub struct LiveKey {
    pub record: KeyRecord,
    pub materials: BTreeMap<u32, Key256>,
    /// `record.policy`, parsed once when stored; `None` if a stored policy
    /// no longer parses under today's rules (it then allows nothing but its
    /// own repair, see `access.rs`).
    pub policy: Option<Arc<Policy>>,
}

impl LiveKey {
    #[must_use]
    pub fn new(record: KeyRecord, materials: BTreeMap<u32, Key256>) -> Self {
        let policy = compile(&record);
        Self { record, materials, policy }
    }

    /// The newest material and its version.
    #[must_use]
    pub fn current(&self) -> Option<(u32, &Key256)> {
        self.materials.iter().next_back().map(|(v, k)| (*v, k))
    }
}

pub struct KeyStore {
    docs: Arc<dyn DocStore>,
    kek: Key256,
    keys: RwLock<HashMap<String, Arc<LiveKey>>>,
    aliases: RwLock<BTreeMap<String, AliasRecord>>,
    writing: tokio::sync::Mutex<()>,
}

fn compile(record: &KeyRecord) -> Option<Arc<Policy>> {
    match Policy::resource(&record.policy) {
        Ok(policy) => Some(Arc::new(policy)),
        Err(e) => {
            tracing::warn!(key = %record.id, error = %e, "stored key policy no longer parses; only PutKeyPolicy by the account may repair it");
            None
        }
    }
}

fn purpose(id: &str, version: u32) -> Vec<u8> {
    format!("kms material|{id}|{version}").into_bytes()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> KmsError {
    tracing::error!(error = %e, "{what} in the key store is unreadable");
    KmsError::internal("The key store is damaged.")
}

impl KeyStore {
    /// Loads every key and alias; fails if any sealed material does not
    /// open under `kek` (a wrong root key must stop the region, not lose keys).
    pub async fn open(docs: Arc<dyn DocStore>, kek: Key256) -> KmsResult<Self> {
        let mut keys = HashMap::new();
        for (id, body) in docs.load_docs(KEYS).await? {
            let record: KeyRecord = serde_json::from_slice(&body).map_err(|e| corrupt("a key", e))?;
            let materials = record
                .materials
                .iter()
                .map(|m| Ok((m.version, wrap::unwrap_key(&kek, &purpose(&id, m.version), &m.sealed)?)))
                .collect::<Result<_, tern_crypto::CryptoError>>()
                .map_err(|e| corrupt("key material (wrong root key?)", e))?;
            keys.insert(id, Arc::new(LiveKey::new(record, materials)));
        }
        let mut aliases = BTreeMap::new();
        for (name, body) in docs.load_docs(ALIASES).await? {
            aliases.insert(name, serde_json::from_slice(&body).map_err(|e| corrupt("an alias", e))?);
        }
        Ok(Self {
            docs,
            kek,
            keys: RwLock::new(keys),
            aliases: RwLock::new(aliases),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    #[must_use]
    pub fn key(&self, id: &str) -> Option<Arc<LiveKey>> {
        self.keys.read().expect("key map lock").get(id).cloned()
    }

    /// Every key, by id.
    #[must_use]
    pub fn keys(&self) -> Vec<Arc<LiveKey>> {
        let mut all: Vec<_> = self.keys.read().expect("key map lock").values().cloned().collect();
        all.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        all
    }

    #[must_use]
    pub fn alias(&self, name: &str) -> Option<AliasRecord> {
        self.aliases.read().expect("alias map lock").get(name).cloned()
    }

    /// Every alias, by name.
    #[must_use]
    pub fn aliases(&self) -> Vec<AliasRecord> {
        self.aliases.read().expect("alias map lock").values().cloned().collect()
    }

    /// Seals `material` as version `version` of `key`.
    pub fn add_material(&self, key: &mut LiveKey, version: u32, material: Key256) -> KmsResult<()> {
        let sealed = wrap::wrap_key(&self.kek, &purpose(&key.record.id, version), &material)
            .map_err(|e| KmsError::internal(e.to_string()))?;
        key.record.materials.push(SealedMaterial { version, created: now(), sealed });
        key.record.materials.sort_by_key(|m| m.version);
        key.materials.insert(version, material);
        Ok(())
    }

    /// Stores a new key; fails if its id is taken.
    pub async fn insert(&self, key: LiveKey) -> KmsResult<Arc<LiveKey>> {
        let _guard = self.writing.lock().await;
        if self.key(&key.record.id).is_some() {
            return Err(KmsError::already_exists(format!("Key {} already exists", key.record.id)));
        }
        self.persist_key(key, Vec::new()).await
    }

    /// Applies `change` to a copy of key `id` and stores it. The change sees
    /// the latest state: writers are serialized.
    pub async fn update<T>(&self, id: &str, change: impl FnOnce(&mut LiveKey) -> KmsResult<T>) -> KmsResult<T> {
        let _guard = self.writing.lock().await;
        let current = self.key(id).ok_or_else(|| KmsError::not_found(format!("Key {id} does not exist")))?;
        let mut key = LiveKey::clone(&current);
        let out = change(&mut key)?;
        self.persist_key(key, Vec::new()).await?;
        Ok(out)
    }

    async fn persist_key(&self, mut key: LiveKey, mut writes: Vec<DocWrite>) -> KmsResult<Arc<LiveKey>> {
        key.policy = compile(&key.record);
        let body = serde_json::to_vec(&key.record).map_err(|e| KmsError::internal(e.to_string()))?;
        writes.push(DocWrite::put(KEYS, key.record.id.clone(), body));
        self.docs.write_docs(writes).await?;
        let key = Arc::new(key);
        self.keys.write().expect("key map lock").insert(key.record.id.clone(), Arc::clone(&key));
        Ok(key)
    }

    /// Destroys key `id`, its material and its aliases, for good.
    pub async fn remove(&self, id: &str) -> KmsResult<()> {
        let _guard = self.writing.lock().await;
        let doomed: Vec<String> = self.aliases().into_iter().filter(|a| a.target == id).map(|a| a.name).collect();
        let mut writes: Vec<DocWrite> = doomed.iter().map(|name| DocWrite::delete(ALIASES, name.clone())).collect();
        writes.push(DocWrite::delete(KEYS, id));
        self.docs.write_docs(writes).await?;
        self.keys.write().expect("key map lock").remove(id);
        let mut aliases = self.aliases.write().expect("alias map lock");
        for name in doomed {
            aliases.remove(&name);
        }
        Ok(())
    }

    /// Creates or repoints alias `name` (`change` checks the old record).
    pub async fn put_alias(
        &self,
        name: &str,
        change: impl FnOnce(Option<&AliasRecord>) -> KmsResult<AliasRecord>,
    ) -> KmsResult<()> {
        let _guard = self.writing.lock().await;
        let record = change(self.alias(name).as_ref())?;
        let body = serde_json::to_vec(&record).map_err(|e| KmsError::internal(e.to_string()))?;
        self.docs.write_docs(vec![DocWrite::put(ALIASES, name, body)]).await?;
        self.aliases.write().expect("alias map lock").insert(name.to_owned(), record);
        Ok(())
    }

    /// Deletes alias `name`; `NotFound` if absent.
    pub async fn delete_alias(&self, name: &str, missing: KmsError) -> KmsResult<()> {
        let _guard = self.writing.lock().await;
        if self.alias(name).is_none() {
            return Err(missing);
        }
        self.docs.write_docs(vec![DocWrite::delete(ALIASES, name)]).await?;
        self.aliases.write().expect("alias map lock").remove(name);
        Ok(())
    }
}
