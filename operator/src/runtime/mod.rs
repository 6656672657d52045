//! What every controller shares: metrics, health endpoints, per-object backoff, leader
//! election and shutdown.

pub mod backoff;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod shutdown;
pub mod watch_backoff;

/// Every error type a controller returns names its category: a stable, low-cardinality word
/// used as the metric label and as the Event reason.
pub trait ErrorCategory {
    fn category(&self) -> &'static str;
}
