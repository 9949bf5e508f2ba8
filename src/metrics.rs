//! Prometheus metrics, served on the probe port at `/metrics`.
//!
//! `trustgate_admission_requests_total{decision}`, `trustgate_admission_duration_seconds`,
//! `trustgate_cache_requests_total{result}`, `trustgate_registry_requests_total{operation,outcome}`
//! `trustgate_registry_request_duration_seconds{operation}`, and the load on trustgate's own
//! budgets: `trustgate_evidence_bytes_in_use` and `trustgate_verifications_running`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// All of trustgate's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<DecisionLabels, Counter>,
    latency: Histogram,
    cache: Family<CacheLabels, Counter>,
    registry_calls: Family<RegistryLabels, Counter>,
    registry_latency: Family<OperationLabels, Histogram>,
    evidence_bytes: Gauge,
    verifications: Gauge,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~26 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trustgate");
        let requests = Family::default();
        let latency = latency_histogram();
        let cache = Family::default();
        let registry_calls = Family::default();
        let registry_latency =
            Family::<OperationLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("admission_requests", "Admission reviews answered, by decision", requests.clone());
        registry.register("admission_duration_seconds", "Time to answer an admission review", latency.clone());
        registry.register("cache_requests", "Decision cache lookups, by result", cache.clone());
        registry.register("registry_requests", "Registry API calls, by operation and outcome", registry_calls.clone());
        registry.register("registry_request_duration_seconds", "Registry API call latency", registry_latency.clone());
        let (evidence_bytes, verifications) = (Gauge::default(), Gauge::default());
        registry.register(
            "evidence_bytes_in_use",
            "Bytes of registry answers held now, of the process's memory budget for them",
            evidence_bytes.clone(),
        );
        registry.register(
            "verifications_running",
            "Image verifications running now, background ones included",
            verifications.clone(),
        );
        Metrics { registry, requests, latency, cache, registry_calls, registry_latency, evidence_bytes, verifications }
    }
}

impl Metrics {
    /// An admission review was answered: `decision` is allowed, denied, warned or error.
    pub fn admission(&self, decision: &'static str, elapsed: Duration) {
        self.requests.get_or_create(&DecisionLabels { decision }).inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A decision cache lookup: hit or miss.
    pub fn cache(&self, hit: bool) {
        self.cache.get_or_create(&CacheLabels { result: if hit { "hit" } else { "miss" } }).inc();
    }

    /// A registry API call finished.
    pub fn registry_call(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.registry_calls.get_or_create(&RegistryLabels { operation, outcome }).inc();
        self.registry_latency.get_or_create(&OperationLabels { operation }).observe(elapsed.as_secs_f64());
    }

    /// Records the load on the engine's budgets (read when `/metrics` is scraped).
    pub fn load(&self, evidence_bytes: usize, verifications: usize) {
        self.evidence_bytes.set(i64::try_from(evidence_bytes).unwrap_or(i64::MAX));
        self.verifications.set(i64::try_from(verifications).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error would leave a truncated exposition.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_was_recorded() {
        let m = Metrics::default();
        m.admission("denied", Duration::from_millis(3));
        m.cache(true);
        m.cache(false);
        m.registry_call("signatures", "registry-unreachable", Duration::from_millis(1));
        let text = m.encode();
        assert!(text.contains(r#"trustgate_admission_requests_total{decision="denied"} 1"#), "{text}");
        assert!(text.contains(r#"trustgate_cache_requests_total{result="hit"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"trustgate_registry_requests_total{operation="signatures",outcome="registry-unreachable"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("trustgate_admission_duration_seconds_count 1"), "{text}");
    }
}
