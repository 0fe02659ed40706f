//! What happens with time: deletion windows end (material destroyed for
//! good), automatic rotations fall due, and failed MRK pushes are retried.

use std::sync::Arc;
use std::time::Duration;

use crate::Kms;
use crate::wire::{DAY, now};

/// How often a region checks for due deletions and rotations.
const PERIOD: Duration = Duration::from_secs(30);
/// How often it catches up with what other front-ends of the region
/// changed: the longest a change made elsewhere goes unseen here, unless a
/// refusal prompts an earlier look.
pub const REFRESH_PERIOD: Duration = Duration::from_secs(1);

impl Kms {
    /// One maintenance round at time `at` (epoch seconds).
    pub async fn maintain(&self, at: f64) {
        // What another front-end already deleted or rotated is not done twice.
        if let Err(e) = self.store.refresh().await {
            tracing::warn!(error = %e, "maintenance postponed: the key store could not catch up");
            return;
        }
        for key in self.store.keys() {
            let record = &key.record;
            let due = record.state.is_pending_deletion() && record.deletion_date.is_some_and(|d| d <= at);
            if due {
                // Told first: the material is gone for good once destroyed.
                self.observer.service_event("DeleteKey", &self.arn(&record.id));
                if let Err(e) = self.destroy(&key).await {
                    tracing::warn!(key = %record.id, error = %e, "deletion postponed");
                }
                continue;
            }
            let owner = record.shared.multi_region.as_ref().is_none_or(|mr| mr.primary_region == self.region);
            let rotation = &record.shared.rotation;
            if owner && rotation.enabled && rotation.next_date.is_some_and(|d| d <= at) {
                let period = f64::from(rotation.period_days) * DAY;
                let rotated = self
                    .change_shared(&record.id, |key| {
                        self.rotate(key)?;
                        key.record.shared.rotation.next_date = Some(at + period);
                        Ok(())
                    })
                    .await;
                match rotated {
                    Ok(_) => self.observer.service_event("RotateKey", &self.arn(&record.id)),
                    Err(e) => tracing::warn!(key = %record.id, error = %e, "automatic rotation failed"),
                }
            }
        }
        self.retry_pushes().await;
    }

    /// Catches up with other front-ends every second and runs
    /// [`Kms::maintain`] every 30, until the region stops.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let kms = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_maintained: Option<tokio::time::Instant> = None;
            loop {
                ticks.tick().await;
                let Some(kms) = kms.upgrade() else { return };
                if last_maintained.is_none_or(|at| at.elapsed() >= PERIOD) {
                    last_maintained = Some(tokio::time::Instant::now());
                    kms.maintain(now()).await;
                } else if let Err(e) = kms.store.refresh().await {
                    tracing::debug!(error = %e, "the key store could not catch up");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};
    use tern_crypto::Key256;
    use tern_store::SqliteMeta;

    use crate::wire::{DAY, now};
    use tern_iam::{Iam, RootIdentity};

    use crate::{Caller, Kms, KmsError, KmsLinks, KmsObserver, KmsPeers, KmsResult};

    /// A deployment of one region: there is nobody to call.
    struct Alone;

    #[async_trait::async_trait]
    impl KmsPeers for Alone {
        fn knows(&self, _: &str) -> bool {
            false
        }

        async fn call(&self, region: &str, _: &str, _: Value) -> KmsResult<Value> {
            Err(KmsError::unsupported(format!("no region {region}")))
        }
    }

    impl KmsObserver for Alone {
        fn cryptographic_call(&self, _: &crate::CryptoCall<'_>) {}
    }

    /// The service events KMS told of, as `name arn`.
    #[derive(Default)]
    struct Events(std::sync::Mutex<Vec<String>>);

    impl KmsObserver for Events {
        fn cryptographic_call(&self, _: &crate::CryptoCall<'_>) {}

        fn service_event(&self, name: &str, key_arn: &str) {
            self.0.lock().unwrap().push(format!("{name} {key_arn}"));
        }
    }

    async fn links(docs: Arc<SqliteMeta>, root: &Key256) -> KmsLinks {
        let identity = RootIdentity {
            access_key_id: "AKIAROOT".into(),
            secret_access_key: zeroize::Zeroizing::new("secret".into()),
        };
        let iam = Iam::authority("000000000000", "us-east-1", identity, docs, root).await.unwrap();
        let peer_secret = tern_crypto::transport::peer_secret("secret");
        KmsLinks { iam: Arc::new(iam), peers: Arc::new(Alone), observer: Arc::new(Alone), peer_secret }
    }

    async fn open(dir: &std::path::Path, root: &Key256) -> Kms {
        open_observed(dir, root, Arc::new(Alone)).await
    }

    async fn open_observed(dir: &std::path::Path, root: &Key256, observer: Arc<dyn KmsObserver>) -> Kms {
        let docs = Arc::new(SqliteMeta::open(&dir.join("meta.db")).await.unwrap());
        let links = KmsLinks { observer, ..links(Arc::clone(&docs), root).await };
        Kms::open("us-east-1", docs, root, links).await.unwrap()
    }

    async fn call(kms: &Kms, operation: &str, body: Value) -> KmsResult<Value> {
        kms.handle(&Caller::root("000000000000"), operation, body.to_string().as_bytes()).await
    }

    fn all_bytes_under(dir: &std::path::Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            bytes.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
        bytes
    }

    #[tokio::test]
    async fn material_rests_only_sealed_and_needs_the_root_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = Key256::random().unwrap();
        let kms = open(dir.path(), &root).await;
        let created = call(&kms, "CreateKey", json!({})).await.unwrap();
        let id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
        call(&kms, "RotateKeyOnDemand", json!({"KeyId": id})).await.unwrap();
        let key = kms.store.key(&id).unwrap();
        assert_eq!(key.materials.len(), 2);
        drop(kms);

        let disk = all_bytes_under(dir.path());
        for material in key.materials.values() {
            assert!(!disk.windows(32).any(|w| w == material.expose()), "material found in plaintext");
        }
        let reopened = open(dir.path(), &root).await;
        assert_eq!(reopened.store.key(&id).unwrap().materials.len(), 2);
        drop(reopened);
        let docs = Arc::new(SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap());
        let other_root = Key256::random().unwrap();
        let links = links(Arc::clone(&docs), &other_root).await;
        let wrong = Kms::open("us-east-1", docs, &other_root, links).await;
        assert!(wrong.is_err(), "a wrong root key stops the region instead of losing keys");
    }

    #[tokio::test]
    async fn a_deletion_window_ends_with_the_material_destroyed_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let root = Key256::random().unwrap();
        let events = Arc::new(Events::default());
        let kms = open_observed(dir.path(), &root, Arc::clone(&events) as Arc<dyn KmsObserver>).await;
        let id = call(&kms, "CreateKey", json!({})).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
        call(&kms, "CreateAlias", json!({"AliasName": "alias/doomed", "TargetKeyId": id})).await.unwrap();
        let blob =
            call(&kms, "Encrypt", json!({"KeyId": id, "Plaintext": "c2VjcmV0"})).await.unwrap()["CiphertextBlob"]
                .clone();
        call(&kms, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7})).await.unwrap();

        kms.maintain(now() + 6.0 * DAY).await;
        assert!(kms.store.key(&id).is_some(), "still inside the window");
        assert!(events.0.lock().unwrap().is_empty());
        kms.maintain(now() + 7.0 * DAY + 1.0).await;
        assert!(kms.store.key(&id).is_none());
        assert_eq!(*events.0.lock().unwrap(), [format!("DeleteKey {}", kms.arn(&id))], "told, for the audit trail");
        assert!(kms.store.alias("alias/doomed").is_none(), "its aliases go with it");
        drop(kms);

        let kms = open(dir.path(), &root).await;
        let e = call(&kms, "Decrypt", json!({"CiphertextBlob": blob})).await.unwrap_err();
        assert_eq!(e.code, "AccessDeniedException", "nothing can decrypt it any more, even after a restart");
    }

    #[tokio::test]
    async fn automatic_rotation_adds_material_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Events::default());
        let kms =
            open_observed(dir.path(), &Key256::random().unwrap(), Arc::clone(&events) as Arc<dyn KmsObserver>).await;
        let id = call(&kms, "CreateKey", json!({})).await.unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
        call(&kms, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 90})).await.unwrap();
        kms.maintain(now() + 89.0 * DAY).await;
        assert_eq!(kms.store.key(&id).unwrap().materials.len(), 1);
        kms.maintain(now() + 90.0 * DAY + 1.0).await;
        assert_eq!(kms.store.key(&id).unwrap().materials.len(), 2);
        assert_eq!(*events.0.lock().unwrap(), [format!("RotateKey {}", kms.arn(&id))]);
        let status = call(&kms, "GetKeyRotationStatus", json!({"KeyId": id})).await.unwrap();
        assert!(status["NextRotationDate"].as_f64().unwrap() > now() + 179.0 * DAY);
    }
}
