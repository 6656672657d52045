//! What every reconcile shares: a deadline, metrics (every reconcile counted, failed or
//! not), per-object backoff reset on success and forgotten when the object is deleted, and
//! an error policy that backs off per object.

use std::future::Future;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;

use super::Context;
use super::ceph_errors::Error;
use super::watch::Gone;
use crate::runtime::ErrorCategory;

/// A reconciler's error: it has a category and can say that the deadline passed.
pub trait ReconcileError: ErrorCategory + std::fmt::Display {
    fn deadline_passed(deadline: Duration) -> Self;
}

impl ReconcileError for Error {
    fn deadline_passed(deadline: Duration) -> Self {
        Error::Timeout(deadline)
    }
}

/// The backoff key of an object of `controller`: the controllers share one backoff map, and
/// a MailCluster and a MailPool may have the same `namespace/name`.
fn backoff_key(controller: &str, key: &str) -> String {
    format!("{controller}:{key}")
}

/// Run one reconcile under `deadline`, recording its duration and outcome.
pub async fn instrumented<E: ReconcileError>(
    ctx: &Context,
    controller: &str,
    key: &str,
    deadline: Duration,
    fut: impl Future<Output = Result<Action, E>>,
) -> Result<Action, E> {
    let started = Instant::now();
    let result = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(E::deadline_passed(deadline)),
    };
    ctx.metrics.reconciled(controller, started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.on_success(&backoff_key(controller, key)),
        Err(e) => {
            ctx.metrics.failed(controller, e.category());
            tracing::warn!(controller, object = key, category = e.category(), error = %e, "reconcile failed");
        }
    }
    result
}

/// The retry delay after a failed reconcile of `key`.
pub fn retry(ctx: &Context, controller: &str, key: &str) -> Action {
    Action::requeue(ctx.backoff.on_failure(&backoff_key(controller, key)))
}

/// Forget the retry counts of `controller`'s objects that are gone (for [`super::watch::main_watch`]).
pub fn forget_backoff(
    ctx: &Context,
    controller: &'static str,
) -> impl Fn(Gone<'_>) + Send + 'static {
    let backoff = ctx.backoff.clone();
    move |gone| {
        backoff.forget_where(|k| {
            k.strip_prefix(controller)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(gone)
        })
    }
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
