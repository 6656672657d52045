//! Prometheus metrics of the operator (served on `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    pub controller: String,
    /// What was found changed behind the operator's back: `pool`, `cephx_user`, `rbox_cfg`,
    /// `secret`, `configmap`, `statefulset`, … (never an object name: bounded cardinality).
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CephCallLabels {
    /// The mon command prefix or rbox-core operation (never an object name: bounded cardinality).
    pub call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// e.g. `mailpools/status`, `secrets`.
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub namespace: String,
    pub mailpool: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Errors of a controller's watches (a 403, an API server away, an undecodable list).
    pub watch_errors: Family<ControllerLabels, Counter>,
    /// Differences from the desired state that the operator repaired although the spec had
    /// not changed: someone or something changes the platform by hand.
    pub drift_repaired: Family<DriftLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub ceph_call_duration: Family<CephCallLabels, Histogram, fn() -> Histogram>,
    /// Mon commands that change cluster state (steady state: none).
    pub ceph_writes: Family<CephCallLabels, Counter>,
    pub canary_latency: Family<PoolLabels, Histogram, fn() -> Histogram>,
    pub canary_failures: Family<PoolLabels, Counter>,
    pub is_leader: Gauge,
    /// Kubernetes API requests of this process (fed from `k8s::write_counter`).
    pub kube_reads: Gauge,
    pub kube_writes: Gauge,
    pub kube_writes_by_resource: Family<ResourceLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rbox_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let watch_errors = Family::<ControllerLabels, Counter>::default();
        let drift_repaired = Family::<DriftLabels, Counter>::default();
        let reconcile_duration =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let ceph_call_duration =
            Family::<CephCallLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let canary_latency =
            Family::<PoolLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let canary_failures = Family::<PoolLabels, Counter>::default();
        let ceph_writes = Family::<CephCallLabels, Counter>::default();
        registry.register(
            "ceph_writes",
            "Ceph admin commands that change cluster state, by command",
            ceph_writes.clone(),
        );
        let is_leader = Gauge::default();
        let kube_reads = Gauge::default();
        let kube_writes = Gauge::default();
        registry.register(
            "kube_api_reads",
            "Kubernetes API reads (GET, list, watch) sent by this process",
            kube_reads.clone(),
        );
        let kube_writes_by_resource = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "kube_api_writes_by_resource",
            "Kubernetes API writes by resource (and subresource)",
            kube_writes_by_resource.clone(),
        );
        registry.register(
            "kube_api_writes",
            "Kubernetes API writes (create, patch, update, delete) sent by this process",
            kube_writes.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by controller and error category",
            reconcile_errors.clone(),
        );
        registry.register(
            "watch_errors",
            "Errors of the controllers' watches, by controller",
            watch_errors.clone(),
        );
        registry.register(
            "drift_repaired",
            "Differences repaired while the spec was unchanged (changes made by hand), by controller and kind of object",
            drift_repaired.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            reconcile_duration.clone(),
        );
        registry.register(
            "ceph_call_duration_seconds",
            "Duration of Ceph calls, by call",
            ceph_call_duration.clone(),
        );
        registry.register(
            "canary_latency_seconds",
            "Round trip of the storage canary (save, read, verify, expunge)",
            canary_latency.clone(),
        );
        registry.register(
            "canary_failures",
            "Failed storage canaries",
            canary_failures.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            is_leader.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            watch_errors,
            drift_repaired,
            reconcile_duration,
            ceph_call_duration,
            ceph_writes,
            canary_latency,
            canary_failures,
            is_leader,
            kube_reads,
            kube_writes,
            kube_writes_by_resource,
        }
    }

    pub fn reconciled(&self, controller: &str, took: Duration) {
        let l = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&l).inc();
        self.reconcile_duration
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    pub fn failed(&self, controller: &str, category: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.to_string(),
                category: category.to_string(),
            })
            .inc();
    }

    pub fn watch_failed(&self, controller: &str) {
        self.watch_errors
            .get_or_create(&ControllerLabels {
                controller: controller.to_string(),
            })
            .inc();
    }

    pub fn drift(&self, controller: &str, what: &str) {
        self.drift_repaired
            .get_or_create(&DriftLabels {
                controller: controller.to_string(),
                what: what.to_string(),
            })
            .inc();
    }

    pub fn ceph_call(&self, call: &str, took: Duration) {
        self.ceph_call_duration
            .get_or_create(&CephCallLabels {
                call: call.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn ceph_write(&self, call: &str) {
        self.ceph_writes
            .get_or_create(&CephCallLabels {
                call: call.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_encodes() {
        let m = Metrics::new();
        m.reconciled("mailpool", Duration::from_millis(12));
        m.failed("mailpool", "ceph_unreachable");
        m.ceph_call("osd pool create", Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains(r#"rbox_operator_reconciles_total{controller="mailpool"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"rbox_operator_reconcile_errors_total{controller="mailpool",category="ceph_unreachable"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"rbox_operator_ceph_call_duration_seconds_count{call="osd pool create"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("# EOF"));
    }
}
