//! What happens with time: deletion windows end (material destroyed for
//! good), automatic rotations fall due, and failed MRK pushes are retried.

use std::sync::Arc;
use std::time::Duration;

use crate::Kms;
use crate::wire::{DAY, now};

/// How often a region checks for due deletions and rotations.
const PERIOD: Duration = Duration::from_secs(30);

impl Kms {
    /// One maintenance round at time `at` (epoch seconds).
    pub async fn maintain(&self, at: f64) {
        for key in self.store.keys() {
            let record = &key.record;
            let due = record.state.is_pending_deletion() && record.deletion_date.is_some_and(|d| d <= at);
            if due {
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
                if let Err(e) = rotated {
                    tracing::warn!(key = %record.id, error = %e, "automatic rotation failed");
                }
            }
        }
        self.retry_pushes().await;
    }

    /// Runs [`Kms::maintain`] every 30 seconds until the region stops.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let kms = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PERIOD);
            loop {
                ticks.tick().await;
                let Some(kms) = kms.upgrade() else { return };
                kms.maintain(now()).await;
            }
        })
    }
}
