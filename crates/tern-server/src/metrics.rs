//! Prometheus metrics of one region, served at `GET /_tern/metrics`. Each
//! region owns its registry (several regions share a process under
//! `tern up`, so there is no global recorder) and labels every series with
//! its name.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsLabels {
    action: String,
    /// `s3` when S3 called KMS for SSE-KMS, else `direct`.
    caller: &'static str,
}

pub struct RegionMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    kms_calls: Family<KmsLabels, Counter>,
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
        Self { registry, requests, latency, kms_calls }
    }

    pub fn observe(&self, service: &str, method: &http::Method, status: http::StatusCode, elapsed: Duration) {
        let (service, method) = (service.to_owned(), method.as_str().to_owned());
        self.latency
            .get_or_create(&LatencyLabels { service: service.clone(), method: method.clone() })
            .observe(elapsed.as_secs_f64());
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
    fn cryptographic_call(&self, action: &str, via_service: bool) {
        let caller = if via_service { "s3" } else { "direct" };
        self.kms_calls.get_or_create(&KmsLabels { action: action.to_owned(), caller }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_region_and_request_labels() {
        let metrics = RegionMetrics::new("eu-west-1");
        metrics.observe("s3", &http::Method::PUT, http::StatusCode::OK, Duration::from_millis(3));
        let text = metrics.render();
        assert!(
            text.contains(r#"tern_http_requests_total{region="eu-west-1",service="s3",method="PUT",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("tern_http_request_duration_seconds_bucket"), "{text}");
    }
}
