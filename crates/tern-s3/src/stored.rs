//! Bucket configurations as stored: each kind one JSON document with a
//! schema version, `{"version": N, "document": …}`. A document an older Tern
//! wrote is brought up to date by its kind's [`StoredConfig::migrate`] when
//! it is read, so renaming a field means a new version and a migration, not
//! a bucket whose every write fails. Documents from before versions existed
//! are version 0. The fixtures in the tests are documents as earlier
//! versions wrote them: they must keep reading.

use s3s::S3Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tern_store::MetaStore;

use crate::error::{internal, store_error};

/// A kind of bucket configuration and its stored schema.
pub(crate) trait StoredConfig: Serialize + DeserializeOwned + Sized {
    /// The configuration's kind in the store.
    const KIND: &'static str;
    /// The schema version this build writes.
    const VERSION: u64;

    /// A document of an older `version` in the form of the next one.
    fn migrate(version: u64, document: Value) -> Result<Value, String>;

    /// Reads a stored document, migrating it from its version to this one.
    fn decode(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let (mut version, mut document) = match value {
            Value::Object(mut envelope) if envelope.len() == 2 && envelope.contains_key("document") => {
                let version = envelope.get("version").and_then(Value::as_u64);
                let version = version.ok_or_else(|| format!("a {} document without a version", Self::KIND))?;
                (version, envelope.remove("document").unwrap_or_default())
            }
            unversioned => (0, unversioned),
        };
        if version > Self::VERSION {
            return Err(format!("a {} document of version {version}, newer than this Tern", Self::KIND));
        }
        while version < Self::VERSION {
            document = Self::migrate(version, document)?;
            version += 1;
        }
        serde_json::from_value(document).map_err(|e| format!("a {} document: {e}", Self::KIND))
    }

    /// The document as this version stores it.
    fn encode(&self) -> String {
        json!({ "version": Self::VERSION, "document": self }).to_string()
    }

    async fn load(meta: &dyn MetaStore, bucket: &str) -> S3Result<Option<Self>> {
        let stored = meta.get_bucket_config(bucket, Self::KIND).await.map_err(store_error)?;
        stored.map(|text| Self::decode(&text).map_err(internal)).transpose()
    }

    async fn store(&self, meta: &dyn MetaStore, bucket: &str) -> S3Result<()> {
        meta.put_bucket_config(bucket, Self::KIND, Some(&self.encode())).await.map_err(store_error)
    }

    async fn remove(meta: &dyn MetaStore, bucket: &str) -> S3Result<()> {
        meta.put_bucket_config(bucket, Self::KIND, None).await.map_err(store_error)
    }
}

impl StoredConfig for tern_replication_model::ReplicationConfig {
    const KIND: &'static str = "replication";
    const VERSION: u64 = 1;

    /// Version 0 (before versions) has version 1's shape.
    fn migrate(_: u64, document: Value) -> Result<Value, String> {
        Ok(document)
    }
}

impl StoredConfig for crate::lifecycle::LifecycleConfig {
    const KIND: &'static str = "lifecycle";
    const VERSION: u64 = 1;

    /// There is no version 0 of lifecycle configurations.
    fn migrate(version: u64, _: Value) -> Result<Value, String> {
        Err(format!("a lifecycle document of version {version}, older than any Tern wrote"))
    }
}

impl StoredConfig for crate::encryption::BucketEncryption {
    const KIND: &'static str = "encryption";
    const VERSION: u64 = 1;

    /// Version 0 (before versions) has version 1's shape.
    fn migrate(_: u64, document: Value) -> Result<Value, String> {
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use tern_replication_model::{Filter, ReplicationConfig};
    use tern_store::SseAlgorithm;

    use super::*;
    use crate::encryption::BucketEncryption;

    /// A replication configuration as Tern wrote it before versions.
    const REPLICATION_V0: &str = r#"{"role":"arn:aws:iam::000000000000:role/r","rules":[{"id":"a","priority":1,"enabled":true,"filter":{"Prefix":"docs/"},"delete_markers":false,"existing_objects":null,"sse_kms_objects":true,"replica_modifications":null,"destination":{"bucket":"dst","account":null,"storage_class":null,"replica_kms_key_id":"mrk-1","replication_time_minutes":null,"metrics":null}}]}"#;
    /// The same configuration as version 1 writes it.
    const REPLICATION_V1: &str = r#"{"document":{"role":"arn:aws:iam::000000000000:role/r","rules":[{"delete_markers":false,"destination":{"account":null,"bucket":"dst","metrics":null,"replica_kms_key_id":"mrk-1","replication_time_minutes":null,"storage_class":null},"enabled":true,"existing_objects":null,"filter":{"Prefix":"docs/"},"id":"a","priority":1,"replica_modifications":null,"sse_kms_objects":true}]},"version":1}"#;
    const ENCRYPTION_V0: &str = r#"{"algorithm":"aws:kms","kms_key_id":"alias/k","bucket_key":true}"#;
    const ENCRYPTION_V1: &str =
        r#"{"document":{"algorithm":"aws:kms","bucket_key":true,"kms_key_id":"alias/k"},"version":1}"#;

    #[test]
    fn documents_written_by_earlier_versions_still_read() {
        let replication = ReplicationConfig::decode(REPLICATION_V0).unwrap();
        assert_eq!(replication.rules[0].filter, Filter::Prefix("docs/".into()));
        assert_eq!(replication.rules[0].destination.replica_kms_key_id.as_deref(), Some("mrk-1"));
        assert_eq!(ReplicationConfig::decode(REPLICATION_V1).unwrap(), replication);
        let encryption = BucketEncryption::decode(ENCRYPTION_V0).unwrap();
        assert_eq!(encryption.algorithm, SseAlgorithm::AwsKms);
        assert_eq!(BucketEncryption::decode(ENCRYPTION_V1).unwrap(), encryption);
    }

    /// A change to what this version writes must come with a new version
    /// and a migration; this fails first.
    #[test]
    fn this_version_writes_its_fixtures() {
        assert_eq!(ReplicationConfig::decode(REPLICATION_V0).unwrap().encode(), REPLICATION_V1);
        assert_eq!(BucketEncryption::decode(ENCRYPTION_V0).unwrap().encode(), ENCRYPTION_V1);
    }

    #[test]
    fn documents_from_a_newer_tern_are_refused_not_misread() {
        let newer = r#"{"version":2,"document":{}}"#;
        assert!(BucketEncryption::decode(newer).unwrap_err().contains("newer"));
        assert!(BucketEncryption::decode(r#"{"document":{}, "v":1}"#).is_err());
    }
}
