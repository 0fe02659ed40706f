//! Each region's lifecycle worker: a pass over its buckets' rules every
//! `[lifecycle] interval_seconds`, each pass bounded, its actions counted in
//! the region's metrics.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tern_s3::{LifecycleClock, LifecycleCursors, Region};

use crate::metrics::RegionMetrics;

/// Rows one pass reads at most; the next resumes where it stopped.
const BUDGET: u64 = 100_000;

pub fn spawn(
    region: &Arc<Region>,
    metrics: &Arc<RegionMetrics>,
    config: &tern_core::LifecycleConfig,
) -> tokio::task::JoinHandle<()> {
    let (region, metrics): (Weak<Region>, Arc<RegionMetrics>) = (Arc::downgrade(region), Arc::clone(metrics));
    let day_ms = i64::try_from(config.day_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(Duration::from_secs(config.interval_seconds));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        let mut cursors = LifecycleCursors::default();
        loop {
            ticks.tick().await;
            let Some(region) = region.upgrade() else { return };
            let clock = LifecycleClock { now_ms: now_ms(), day_ms };
            match region.apply_lifecycle(clock, BUDGET, &mut cursors).await {
                Ok(report) => metrics.lifecycle_pass(&report),
                Err(e) => tracing::warn!(region = region.name, error = %e, "a lifecycle pass stopped early"),
            }
        }
    })
}

fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
