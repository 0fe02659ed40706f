//! Request rates and latency percentiles of this region, from its own
//! metrics (the same counters `/_tern/metrics` serves), sampled on a timer
//! so a page shows the last minute rather than totals since start.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tern_server::RegionMetrics;

pub const SAMPLE_PERIOD: Duration = Duration::from_secs(5);
/// How far back rates and percentiles look.
const WINDOW: Duration = Duration::from_mins(1);
const KEPT: usize = 16;

/// The counters at one moment.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// Requests answered so far, by service.
    requests: BTreeMap<String, u64>,
    /// Latency histogram, cumulative, by upper bound in seconds.
    latency: Vec<(f64, u64)>,
}

pub struct Traffic {
    metrics: Arc<RegionMetrics>,
    samples: Mutex<VecDeque<(Instant, Sample)>>,
}

/// What the last minute looked like.
pub struct Summary {
    pub seconds: f64,
    /// Requests per second, by service.
    pub rates: BTreeMap<String, f64>,
    /// p50, p90, p99: the upper bound of the latency bucket each falls in.
    pub percentiles: Option<[f64; 3]>,
}

impl Traffic {
    pub fn new(metrics: Arc<RegionMetrics>) -> Self {
        Self { metrics, samples: Mutex::new(VecDeque::new()) }
    }

    /// Samples every `period` while the console lives.
    pub fn sample_every(traffic: &Arc<Self>, period: Duration) {
        let traffic: Weak<Self> = Arc::downgrade(traffic);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(traffic) = traffic.upgrade() else { return };
                traffic.take_sample();
            }
        });
    }

    fn take_sample(&self) {
        let sample = parse(&self.metrics.render());
        let mut samples = self.samples.lock().expect("samples lock");
        samples.push_back((Instant::now(), sample));
        while samples.len() > KEPT {
            samples.pop_front();
        }
    }

    pub fn summary(&self) -> Option<Summary> {
        let now = (Instant::now(), parse(&self.metrics.render()));
        let samples = self.samples.lock().expect("samples lock");
        let (then, before) = samples.iter().find(|(at, _)| at.elapsed() <= WINDOW).or_else(|| samples.front())?;
        let seconds = now.0.duration_since(*then).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let rates = now.1.requests.iter().map(|(service, n)| {
            let earlier = before.requests.get(service).copied().unwrap_or(0);
            // A minute's requests stay far below u32::MAX.
            let done = u32::try_from(n.saturating_sub(earlier)).unwrap_or(u32::MAX);
            (service.clone(), f64::from(done) / seconds)
        });
        Some(Summary { seconds, rates: rates.collect(), percentiles: percentiles(&before.latency, &now.1.latency) })
    }
}

/// The sums this page needs from Prometheus text: requests by service, and
/// the latency histogram over every label.
fn parse(text: &str) -> Sample {
    let mut sample = Sample::default();
    let mut latency: BTreeMap<u64, u64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        // Counters and bucket counts are whole numbers.
        let Ok(value) = value.parse::<u64>() else { continue };
        if series.starts_with("tern_http_requests_total{") {
            let service = label(series, "service").unwrap_or("other").to_owned();
            *sample.requests.entry(service).or_default() += value;
        } else if series.starts_with("tern_http_request_duration_seconds_bucket{")
            && let Some(le) = label(series, "le").and_then(|le| le.parse::<f64>().ok())
        {
            *latency.entry(le.to_bits()).or_default() += value;
        }
    }
    sample.latency = latency.into_iter().map(|(bits, n)| (f64::from_bits(bits), n)).collect();
    sample.latency.sort_by(|a, b| a.0.total_cmp(&b.0));
    sample
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &series[start..];
    Some(&rest[..rest.find('"')?])
}

/// p50, p90 and p99 of the requests between two cumulative histograms.
fn percentiles(before: &[(f64, u64)], now: &[(f64, u64)]) -> Option<[f64; 3]> {
    let earlier = |le: f64| before.iter().find(|(b, _)| b.to_bits() == le.to_bits()).map_or(0, |(_, m)| *m);
    let counts: Vec<(f64, u64)> = now.iter().map(|(le, n)| (*le, n.saturating_sub(earlier(*le)))).collect();
    let total = counts.last()?.1;
    if total == 0 {
        return None;
    }
    let at =
        |percent: u64| counts.iter().find(|(_, n)| n * 100 >= percent * total).map_or(f64::INFINITY, |(le, _)| *le);
    Some([at(50), at(90), at(99)])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP tern_http_requests Requests
tern_http_requests_total{service="s3",method="GET",status="200",region="us-east-1"} 7
tern_http_requests_total{service="kms",method="POST",status="200",region="us-east-1"} 3
tern_http_requests_total{service="s3",method="PUT",status="200",region="us-east-1"} 2
tern_http_request_duration_seconds_bucket{service="s3",method="GET",le="0.001"} 5
tern_http_request_duration_seconds_bucket{service="s3",method="GET",le="0.01"} 9
tern_http_request_duration_seconds_bucket{service="s3",method="GET",le="+Inf"} 10
tern_http_request_duration_seconds_bucket{service="kms",method="POST",le="0.001"} 0
tern_http_request_duration_seconds_bucket{service="kms",method="POST",le="0.01"} 0
tern_http_request_duration_seconds_bucket{service="kms",method="POST",le="+Inf"} 10
"#;

    #[test]
    fn sums_requests_by_service_and_the_histogram_over_labels() {
        let sample = parse(TEXT);
        assert_eq!(sample.requests["s3"], 9);
        assert_eq!(sample.requests["kms"], 3);
        assert_eq!(sample.latency, [(0.001, 5), (0.01, 9), (f64::INFINITY, 20)]);
    }

    #[test]
    fn percentiles_count_only_what_happened_between_samples() {
        let before = [(0.001, 5), (0.01, 9), (f64::INFINITY, 20)];
        let now = [(0.001, 105), (0.01, 109), (f64::INFINITY, 120)];
        assert_eq!(percentiles(&before, &now), Some([0.001, 0.001, 0.001]));
        assert_eq!(percentiles(&before, &before), None, "nothing happened");
        let slow = [(0.001, 5), (0.01, 18), (f64::INFINITY, 30)];
        assert_eq!(percentiles(&before, &slow), Some([0.01, 0.01, f64::INFINITY]));
    }
}
