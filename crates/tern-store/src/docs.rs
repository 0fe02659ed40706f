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

#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Every document of `collection` as `(id, body)`, by id.
    async fn load_docs(&self, collection: &str) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Applies all `writes` in one durable transaction, or none of them.
    async fn write_docs(&self, writes: Vec<DocWrite>) -> StoreResult<()>;
}
