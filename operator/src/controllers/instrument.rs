//! What every reconcile of the Ceph-side controllers shares: a deadline, metrics, per-object
//! backoff reset on success, and an error policy that backs off per object and says why in
//! an Event.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;

use super::Context;
use super::ceph_errors::Error;
use crate::runtime::ErrorCategory;

/// Run one reconcile under `deadline`, recording its duration and outcome.
pub async fn instrumented(
    ctx: &Context,
    controller: &str,
    key: &str,
    deadline: Duration,
    fut: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(deadline)),
    };
    ctx.metrics.reconciled(controller, started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.on_success(key),
        Err(e) => {
            ctx.metrics.failed(controller, e.category());
            tracing::warn!(controller, object = key, category = e.category(), error = %e, "reconcile failed");
        }
    }
    result
}

/// The retry delay after a failed reconcile of `key`.
pub fn retry(ctx: &Context, key: &str) -> Action {
    Action::requeue(ctx.backoff.on_failure(key))
}

/// `namespace/name` of an object.
pub fn object_key<K: kube::Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// The current time as a Kubernetes timestamp.
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
}
