//! Kubernetes helpers every controller uses: one field manager, server-side apply, status
//! written only when it changed, conditions that keep their transition time, Events, and a
//! write counter that proves "steady state writes nothing".

pub mod apply;
pub mod conditions;
pub mod events;
pub mod write_counter;

/// The one field manager of every server-side apply the operator does. Distinct from Argo CD's
/// and Flux's, so GitOps tools and the operator own disjoint fields and never fight.
pub const FIELD_MANAGER: &str = "rbox-operator";

/// Timeout for each Kubernetes call (kube's client has no per-request deadline by default).
pub const KUBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
