//! The key store of one region: every key and alias in memory for fast
//! cryptographic calls, written through to the region's document store.
//!
//! Key material rests only sealed (AES-256-GCM) under the key-store key,
//! which is derived from the region's root key; the purpose label binds each
//! sealed material to its key id and version, so sealed blobs cannot be
//! swapped between keys. Writers are serialized; readers never wait.
//!
//! Several front-ends of a region may share the document store: each
//! write requires that nobody changed its collections since this process
//! last read them (their generation), and [`KeyStore::refresh`] catches up
//! with what the others wrote.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tern_crypto::Key256;
use tern_crypto::wrap;
use tern_iam::policy::Policy;
use tern_store::{DocStore, DocWrite, StoreError};

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

/// The keys and aliases as of known generations of their collections
/// (`None` until first read).
#[derive(Default)]
struct View {
    keys: HashMap<String, Arc<LiveKey>>,
    aliases: BTreeMap<String, AliasRecord>,
    keys_generation: Option<i64>,
    aliases_generation: Option<i64>,
}

pub struct KeyStore {
    docs: Arc<dyn DocStore>,
    kek: Key256,
    view: RwLock<View>,
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
        let store = Self { docs, kek, view: RwLock::default(), writing: tokio::sync::Mutex::new(()) };
        store.refresh().await?;
        Ok(store)
    }

    /// Catches up with changes other front-ends of the region made, if
    /// any; says whether there were. A key whose record is unchanged keeps
    /// its unsealed material.
    pub async fn refresh(&self) -> KmsResult<bool> {
        let (keys_seen, aliases_seen) = {
            let view = self.view.read().expect("key store lock");
            (view.keys_generation, view.aliases_generation)
        };
        // Nobody else writes an embedded store: once read, it is current.
        if keys_seen.is_some() && aliases_seen.is_some() && !self.docs.docs_shared() {
            return Ok(false);
        }
        let mut changed = false;
        if Some(self.docs.doc_generation(KEYS).await?) != keys_seen {
            let loaded = self.docs.load_docs(KEYS).await?;
            let keys = self.unseal_all(loaded.docs)?;
            let mut view = self.view.write().expect("key store lock");
            // Never back: a write of this process may have moved on meanwhile.
            if view.keys_generation.is_none_or(|seen| loaded.generation > seen) {
                (view.keys, view.keys_generation) = (keys, Some(loaded.generation));
                changed = true;
            }
        }
        if Some(self.docs.doc_generation(ALIASES).await?) != aliases_seen {
            let loaded = self.docs.load_docs(ALIASES).await?;
            let mut aliases = BTreeMap::new();
            for (name, body) in loaded.docs {
                aliases.insert(name, serde_json::from_slice(&body).map_err(|e| corrupt("an alias", e))?);
            }
            let mut view = self.view.write().expect("key store lock");
            if view.aliases_generation.is_none_or(|seen| loaded.generation > seen) {
                (view.aliases, view.aliases_generation) = (aliases, Some(loaded.generation));
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The keys stored as `docs`, unsealing only those whose record differs
    /// from the one in memory.
    fn unseal_all(&self, docs: Vec<(String, Vec<u8>)>) -> KmsResult<HashMap<String, Arc<LiveKey>>> {
        let known = self.view.read().expect("key store lock").keys.clone();
        let mut keys = HashMap::new();
        for (id, body) in docs {
            if let Some(same) = known.get(&id).filter(|k| serde_json::to_vec(&k.record).is_ok_and(|b| b == body)) {
                keys.insert(id, Arc::clone(same));
                continue;
            }
            let record: KeyRecord = serde_json::from_slice(&body).map_err(|e| corrupt("a key", e))?;
            let materials = record
                .materials
                .iter()
                .map(|m| Ok((m.version, wrap::unwrap_key(&self.kek, &purpose(&id, m.version), &m.sealed)?)))
                .collect::<Result<_, tern_crypto::CryptoError>>()
                .map_err(|e| corrupt("key material (wrong root key?)", e))?;
            keys.insert(id, Arc::new(LiveKey::new(record, materials)));
        }
        Ok(keys)
    }

    #[must_use]
    pub fn key(&self, id: &str) -> Option<Arc<LiveKey>> {
        self.view.read().expect("key store lock").keys.get(id).cloned()
    }

    /// Every key, by id.
    #[must_use]
    pub fn keys(&self) -> Vec<Arc<LiveKey>> {
        let mut all: Vec<_> = self.view.read().expect("key store lock").keys.values().cloned().collect();
        all.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        all
    }

    #[must_use]
    pub fn alias(&self, name: &str) -> Option<AliasRecord> {
        self.view.read().expect("key store lock").aliases.get(name).cloned()
    }

    /// Every alias, by name.
    #[must_use]
    pub fn aliases(&self) -> Vec<AliasRecord> {
        self.view.read().expect("key store lock").aliases.values().cloned().collect()
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

    /// Stores a new key, and with it the alias that names it if one is
    /// given; fails if either is taken.
    pub async fn insert(&self, key: LiveKey, alias: Option<AliasRecord>) -> KmsResult<Arc<LiveKey>> {
        let _guard = self.writing.lock().await;
        if self.key(&key.record.id).is_some() {
            return Err(KmsError::already_exists(format!("Key {} already exists", key.record.id)));
        }
        let mut change = Change::default();
        if let Some(alias) = alias {
            if self.alias(&alias.name).is_some() {
                return Err(KmsError::already_exists(format!("Alias {} already exists", alias.name)));
            }
            change.aliases.push((alias.name.clone(), Some(alias)));
        }
        change.keys.push((key.record.id.clone(), Some(key)));
        let mut stored = self.commit(change).await?;
        Ok(stored.pop().expect("the key just stored"))
    }

    /// Applies `change` to a copy of key `id` and stores it, unless another
    /// front-end changed the keys since this one last saw them: then the
    /// answer is [`KmsError::stale`] and the view is fresh for a retry.
    pub async fn update<T>(&self, id: &str, change: impl FnOnce(&mut LiveKey) -> KmsResult<T>) -> KmsResult<T> {
        let _guard = self.writing.lock().await;
        let current = self.key(id).ok_or_else(|| KmsError::not_found(format!("Key {id} does not exist")))?;
        let mut key = LiveKey::clone(&current);
        let out = change(&mut key)?;
        self.commit(Change { keys: vec![(id.to_owned(), Some(key))], ..Change::default() }).await?;
        Ok(out)
    }

    /// Destroys key `id`, its material and its aliases, for good.
    pub async fn remove(&self, id: &str) -> KmsResult<()> {
        let _guard = self.writing.lock().await;
        let doomed = self.aliases().into_iter().filter(|a| a.target == id).map(|a| (a.name, None)).collect();
        self.commit(Change { keys: vec![(id.to_owned(), None)], aliases: doomed }).await?;
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
        self.commit(Change { aliases: vec![(name.to_owned(), Some(record))], ..Change::default() }).await?;
        Ok(())
    }

    /// Deletes alias `name`; `NotFound` if absent.
    pub async fn delete_alias(&self, name: &str, missing: KmsError) -> KmsResult<()> {
        let _guard = self.writing.lock().await;
        if self.alias(name).is_none() {
            return Err(missing);
        }
        self.commit(Change { aliases: vec![(name.to_owned(), None)], ..Change::default() }).await?;
        Ok(())
    }

    /// Writes `change` if the collections it touches are still at the
    /// generations this view has, then shows it; returns the keys stored.
    /// The caller holds `writing`.
    async fn commit(&self, change: Change) -> KmsResult<Vec<Arc<LiveKey>>> {
        let (keys_generation, aliases_generation) = {
            let view = self.view.read().expect("key store lock");
            (view.keys_generation.unwrap_or(0), view.aliases_generation.unwrap_or(0))
        };
        let mut writes = Vec::new();
        // The keys are expected unchanged by every write: an alias must not
        // come to name a key another front-end removed meanwhile.
        let mut expect = vec![(KEYS, keys_generation)];
        let mut stored = Vec::new();
        let writes_keys = !change.keys.is_empty();
        for (id, key) in change.keys {
            match key {
                Some(mut key) => {
                    key.policy = compile(&key.record);
                    let body = serde_json::to_vec(&key.record).map_err(|e| KmsError::internal(e.to_string()))?;
                    writes.push(DocWrite::put(KEYS, id, body));
                    stored.push(Arc::new(key));
                }
                None => writes.push(DocWrite::delete(KEYS, id)),
            }
        }
        let writes_aliases = !change.aliases.is_empty();
        if writes_aliases {
            expect.push((ALIASES, aliases_generation));
        }
        for (name, alias) in &change.aliases {
            match alias {
                Some(record) => {
                    let body = serde_json::to_vec(record).map_err(|e| KmsError::internal(e.to_string()))?;
                    writes.push(DocWrite::put(ALIASES, name.clone(), body));
                }
                None => writes.push(DocWrite::delete(ALIASES, name.clone())),
            }
        }
        let removed: Vec<String> =
            writes.iter().filter(|w| w.collection == KEYS && w.body.is_none()).map(|w| w.id.clone()).collect();
        match self.docs.write_docs(writes, &expect).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                self.refresh().await?;
                return Err(KmsError::stale());
            }
            Err(e) => return Err(e.into()),
        }
        // Shown only over the state it was made from: a refresh that has
        // already moved the view past it brought this write along.
        let mut view = self.view.write().expect("key store lock");
        if writes_keys && view.keys_generation.unwrap_or(0) == keys_generation {
            view.keys_generation = Some(keys_generation + 1);
            for id in removed {
                view.keys.remove(&id);
            }
            for key in &stored {
                view.keys.insert(key.record.id.clone(), Arc::clone(key));
            }
        }
        if writes_aliases && view.aliases_generation.unwrap_or(0) == aliases_generation {
            view.aliases_generation = Some(aliases_generation + 1);
            for (name, alias) in change.aliases {
                match alias {
                    Some(record) => view.aliases.insert(name, record),
                    None => view.aliases.remove(&name),
                };
            }
        }
        Ok(stored)
    }
}

/// What one write changes: keys and aliases stored (`Some`) or removed.
#[derive(Default)]
struct Change {
    keys: Vec<(String, Option<LiveKey>)>,
    aliases: Vec<(String, Option<AliasRecord>)>,
}
