//! The storage canary: through rbox-core over the shared connection, save → read → verify →
//! expunge one mail in the reserved namespace, timed into the canary histogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rbox_core::backend::Backend;
use rbox_core::store::{Store, StoreConfig};

use super::status::CanaryOutcome;
use crate::runtime::metrics::{Metrics, PoolLabels};

pub async fn run(
    backend: Arc<dyn Backend>,
    pools: (&str, &str),
    cfg_object: &str,
    timeout: Duration,
    metrics: &Metrics,
    labels: &PoolLabels,
) -> CanaryOutcome {
    let started = Instant::now();
    let mut config = StoreConfig::new(pools.0, pools.1);
    config.cfg_object = cfg_object.to_string();
    // One mail per run: allocating UIDs ahead would only leave gaps.
    config.uid_prefetch = 0;
    let result = tokio::time::timeout(timeout, async move {
        let store = Store::open(backend, config).await?;
        store.canary().await
    })
    .await;
    let took = started.elapsed();
    metrics
        .canary_latency
        .get_or_create(labels)
        .observe(took.as_secs_f64());
    let message = match result {
        Ok(Ok(report)) => {
            tracing::debug!(pool = %labels.mailpool, total_ms = report.total.as_millis() as u64, steps = ?report.steps, "canary passed");
            None
        }
        Ok(Err(e)) => Some(format!("canary failed: {e}")),
        Err(_) => Some(format!("canary did not finish within {timeout:?}")),
    };
    if message.is_some() {
        metrics.canary_failures.get_or_create(labels).inc();
    }
    CanaryOutcome {
        ok: message.is_none(),
        latency_ms: took.as_millis() as u64,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbox_core::backend::memory::MemoryBackend;

    #[tokio::test]
    async fn passes_on_a_working_store_and_fails_on_a_missing_pool() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_pools(&["d", "i"]));
        let m = Metrics::new();
        let labels = PoolLabels {
            namespace: "ns".into(),
            mailpool: "mp".into(),
        };
        let ok = run(
            backend.clone(),
            ("d", "i"),
            "rbox_cfg",
            Duration::from_secs(5),
            &m,
            &labels,
        )
        .await;
        assert!(ok.ok, "{ok:?}");
        let bad = run(
            backend,
            ("missing", "i"),
            "rbox_cfg",
            Duration::from_secs(5),
            &m,
            &labels,
        )
        .await;
        assert!(!bad.ok);
        assert!(bad.message.unwrap().contains("canary failed"));
        let text = m.encode();
        assert!(
            text.contains(
                "rbox_operator_canary_failures_total{namespace=\"ns\",mailpool=\"mp\"} 1"
            ),
            "{text}"
        );
    }
}
