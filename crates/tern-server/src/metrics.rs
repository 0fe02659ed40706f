//! Prometheus metrics of one region, served at `GET /_tern/metrics`. Each
//! region owns its registry (several regions share a process under
//! `tern up`, so there is no global recorder) and labels every series with
//! its name. Request labels come from fixed sets, decided after routing,
//! never from what a request claims: an anonymous client cannot grow the
//! number of series.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Which service answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    S3,
    Kms,
    Iam,
    Sts,
    /// Refused before any service saw it.
    Refused,
    /// Signed for another region, and relayed to it.
    Relayed,
    /// The web console.
    Console,
}

impl Served {
    /// The service of a credential scope the outer layer routes (`kms`, `iam`, `sts`).
    #[must_use]
    pub fn of(service: &str) -> Self {
        match service {
            "kms" => Self::Kms,
            "iam" => Self::Iam,
            "sts" => Self::Sts,
            _ => Self::Refused,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Relayed => "relayed",
            Self::Kms => "kms",
            Self::Iam => "iam",
            Self::Sts => "sts",
            Self::Refused => "refused",
            Self::Console => "console",
        }
    }
}

fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::PUT => "PUT",
        http::Method::POST => "POST",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsLabels {
    action: String,
    /// `s3` when S3 called KMS for SSE-KMS, else `direct`.
    caller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    bucket: String,
    rule: String,
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    bucket: String,
    rule: String,
    destination: String,
    reason: String,
}

/// Replication series of one region, per (bucket, rule, destination).
struct ReplicationMetrics {
    pending_operations: Family<RuleLabels, Gauge>,
    pending_bytes: Family<RuleLabels, Gauge>,
    failed: Family<FailureLabels, Counter>,
    latency: Family<RuleLabels, Histogram>,
    /// Series the last backlog set, so those that emptied drop to zero.
    backlog_series: std::sync::Mutex<std::collections::HashSet<RuleLabels>>,
}

pub struct RegionMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    kms_calls: Family<KmsLabels, Counter>,
    replication: ReplicationMetrics,
    lifecycle: Family<LifecycleLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LifecycleLabels {
    action: &'static str,
}

impl RegionMetrics {
    #[must_use]
    pub fn new(region: &str) -> Self {
        let mut registry = Registry::with_labels([("region".into(), region.to_owned().into())].into_iter());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("tern_http_requests", "Requests answered, by service, method and status", requests.clone());
        // 0.25 ms … ~8 s in ×2 steps.
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register("tern_http_request_duration_seconds", "Time to the response head", latency.clone());
        let kms_calls = Family::<KmsLabels, Counter>::default();
        registry.register(
            "tern_kms_cryptographic_calls",
            "KMS Encrypt/Decrypt/GenerateDataKey calls, by action and by whether S3 made them",
            kms_calls.clone(),
        );
        let replication = ReplicationMetrics::register(&mut registry);
        let lifecycle = Family::<LifecycleLabels, Counter>::default();
        registry.register("tern_lifecycle_actions", "What lifecycle rules did, by action", lifecycle.clone());
        Self { registry, requests, latency, kms_calls, replication, lifecycle }
    }

    /// Counts what a lifecycle pass did.
    pub fn lifecycle_pass(&self, report: &tern_s3::LifecycleReport) {
        for (action, n) in [
            ("expire", report.expired),
            ("remove_delete_marker", report.delete_markers_removed),
            ("expire_noncurrent", report.noncurrent_expired),
            ("abort_upload", report.uploads_aborted),
        ] {
            self.lifecycle.get_or_create(&LifecycleLabels { action }).inc_by(n);
        }
    }

    pub fn observe(&self, served: Served, method: &http::Method, status: http::StatusCode, elapsed: Duration) {
        let (service, method) = (served.label(), method_label(method));
        self.latency.get_or_create(&LatencyLabels { service, method }).observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { service, method, status: status.as_u16() }).inc();
    }

    /// The text exposition format Prometheus scrapes.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl tern_kms::KmsObserver for RegionMetrics {
    fn cryptographic_call(&self, call: &tern_kms::CryptoCall<'_>) {
        let caller = if call.caller.via_service.is_some() { "s3" } else { "direct" };
        self.kms_calls.get_or_create(&KmsLabels { action: call.action.to_owned(), caller }).inc();
    }
}

impl ReplicationMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            pending_operations: Family::default(),
            pending_bytes: Family::default(),
            failed: Family::default(),
            // 10 ms … ~5 min in ×2 steps.
            latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 15))),
            backlog_series: std::sync::Mutex::default(),
        };
        registry.register(
            "tern_replication_pending_operations",
            "Versions waiting to replicate",
            metrics.pending_operations.clone(),
        );
        registry.register(
            "tern_replication_pending_bytes",
            "Bytes waiting to replicate",
            metrics.pending_bytes.clone(),
        );
        registry.register(
            "tern_replication_failed_operations",
            "Replications that FAILED, by reason",
            metrics.failed.clone(),
        );
        registry.register(
            "tern_replication_latency_seconds",
            "From the source version's commit to the replica's",
            metrics.latency.clone(),
        );
        metrics
    }
}

fn rule_labels(task: &tern_store::TaskRecord) -> RuleLabels {
    RuleLabels { bucket: task.bucket.clone(), rule: task.rule_id.clone(), destination: task.destination.clone() }
}

impl tern_replication::ReplicationObserver for RegionMetrics {
    fn completed(&self, task: &tern_store::TaskRecord, latency: Duration) {
        self.replication.latency.get_or_create(&rule_labels(task)).observe(latency.as_secs_f64());
    }

    fn failed(&self, task: &tern_store::TaskRecord, reason: tern_replication_model::FailureReason) {
        let labels = FailureLabels {
            bucket: task.bucket.clone(),
            rule: task.rule_id.clone(),
            destination: task.destination.clone(),
            reason: reason.as_str().to_owned(),
        };
        self.replication.failed.get_or_create(&labels).inc();
    }

    fn backlog(&self, backlog: &[tern_store::Backlog]) {
        let metrics = &self.replication;
        let mut previous = metrics.backlog_series.lock().expect("backlog series lock");
        let current: std::collections::HashSet<RuleLabels> = backlog
            .iter()
            .map(|b| {
                let labels = RuleLabels {
                    bucket: b.bucket.clone(),
                    rule: b.rule_id.clone(),
                    destination: b.destination.clone(),
                };
                metrics.pending_operations.get_or_create(&labels).set(i64::try_from(b.operations).unwrap_or(i64::MAX));
                metrics.pending_bytes.get_or_create(&labels).set(i64::try_from(b.bytes).unwrap_or(i64::MAX));
                labels
            })
            .collect();
        for emptied in previous.difference(&current) {
            metrics.pending_operations.get_or_create(emptied).set(0);
            metrics.pending_bytes.get_or_create(emptied).set(0);
        }
        *previous = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_region_and_request_labels() {
        let metrics = RegionMetrics::new("eu-west-1");
        metrics.observe(Served::S3, &http::Method::PUT, http::StatusCode::OK, Duration::from_millis(3));
        let odd = http::Method::from_bytes(b"BREW").unwrap();
        metrics.observe(Served::of("made-up"), &odd, http::StatusCode::FORBIDDEN, Duration::from_millis(1));
        let text = metrics.render();
        assert!(
            text.contains(r#"tern_http_requests_total{region="eu-west-1",service="s3",method="PUT",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("tern_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains(r#"service="refused",method="other",status="403""#), "{text}");
    }
}
