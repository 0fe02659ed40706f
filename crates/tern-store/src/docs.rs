//! The document contract: named collections of opaque bodies, for services
//! whose state is small and read whole at start (KMS keys and aliases, IAM
//! principals). [`crate::contract::doc_suite`] is its executable form.

use async_trait::async_trait;

use crate::StoreResult;

/// One change: `body: None` deletes the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWrite {
    pub collection: &'static str,
    pub id: String,
    pub body: Option<Vec<u8>>,
}

impl DocWrite {
    #[must_use]
    pub fn put(collection: &'static str, id: impl Into<String>, body: Vec<u8>) -> Self {
        Self { collection, id: id.into(), body: Some(body) }
    }

    #[must_use]
    pub fn delete(collection: &'static str, id: impl Into<String>) -> Self {
        Self { collection, id: id.into(), body: None }
    }
}

/// A collection's documents as `(id, body)`, by id, and its generation:
/// how many batches had changed it, at most, when they were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Docs {
    pub generation: i64,
    pub docs: Vec<(String, Vec<u8>)>,
}

/// The documents of several processes at once (front-ends of a region):
/// each collection counts the batches that change it, so a process sees
/// that another changed it, and a write may require that nobody did.
#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Every document of `collection`, with a generation no newer than
    /// the documents (read first, so a change in between is seen again,
    /// never missed).
    async fn load_docs(&self, collection: &str) -> StoreResult<Docs>;
    /// How many batches have changed `collection` (0: none).
    async fn doc_generation(&self, collection: &str) -> StoreResult<i64>;
    /// Applies all `writes` in one durable transaction, or none of them.
    /// Each collection written moves on by one generation; every one named
    /// in `expect`, written or not, must be at the generation given there
    /// (and stays so until the commit), else nothing is written and the
    /// answer is `Conflict`.
    async fn write_docs(&self, writes: Vec<DocWrite>, expect: &[(&'static str, i64)]) -> StoreResult<()>;
    /// Whether other processes write these documents too (front-ends of
    /// the region); if not, what this process holds is never behind.
    fn docs_shared(&self) -> bool;
}

/// The collections `writes` change, each once.
pub(crate) fn collections_of(writes: &[DocWrite]) -> Vec<&'static str> {
    let mut collections: Vec<&'static str> = writes.iter().map(|w| w.collection).collect();
    collections.sort_unstable();
    collections.dedup();
    collections
}

/// The collections `expect` names that `writes` leave alone.
pub(crate) fn only_expected<'a>(
    writes: &[DocWrite],
    expect: &'a [(&'static str, i64)],
) -> impl Iterator<Item = (&'static str, i64)> + 'a {
    let written = collections_of(writes);
    expect.iter().copied().filter(move |(c, _)| !written.contains(c))
}

/// `Conflict` unless `collection`, now at `generation` after this batch's
/// step, was where `expect` says before it.
pub(crate) fn check_expected(collection: &str, generation: i64, expect: &[(&'static str, i64)]) -> StoreResult<()> {
    match expect.iter().find(|(c, _)| *c == collection) {
        Some((_, expected)) if generation != expected + 1 => Err(crate::StoreError::Conflict(collection.to_owned())),
        _ => Ok(()),
    }
}
