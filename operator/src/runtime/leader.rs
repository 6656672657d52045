//! Lease-based leader election: two replicas can run; only the lease holder reconciles.
//!
//! A replica that loses the lease stops its controllers and exits with an error, so its pod
//! restarts as a clean standby instead of risking two writers (the pattern Rook and
//! controller-runtime use).

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica (the pod name in a cluster).
    pub identity: String,
    pub lease_duration: Duration,
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election: {0}")]
    Lease(String),
    #[error("lost the leader lease; stopping so a standby can take over")]
    Lost,
}

/// Wait for the lease (or shutdown), then run `work` with a token that is cancelled when the
/// lease is lost or shutdown is requested. Returns when `work` returns.
pub async fn run_as_leader<F, Fut>(
    client: Client,
    cfg: LeaderConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
    work: F,
) -> Result<(), LeaderError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &cfg.lease_name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.lease_duration.as_secs().max(2))
        .with_grace(
            cfg.grace
                .as_secs()
                .clamp(1, cfg.lease_duration.as_secs().max(2) - 1),
        )
        .build()
        .await
        .map_err(|e| LeaderError::Lease(e.to_string()))?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "waiting for the leader lease");
    loop {
        if *state.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() {
                return Err(LeaderError::Lease("lease watcher stopped".into()));
            },
            _ = shutdown.cancelled() => {
                drop(state);
                let _ = task.await;
                return Ok(());
            }
        }
    }
    tracing::info!(identity = %cfg.identity, "acquired the leader lease");
    metrics.is_leader.set(1);
    let work_token = shutdown.child_token();
    let mut lost = false;
    {
        let work = work(work_token.clone());
        tokio::pin!(work);
        loop {
            tokio::select! {
                _ = &mut work => break,
                changed = state.changed(), if !lost => {
                    if changed.is_err() || !*state.borrow_and_update() {
                        tracing::error!("lost the leader lease");
                        lost = true;
                        work_token.cancel();
                    }
                }
            }
        }
    }
    metrics.is_leader.set(0);
    // Closing the channel makes the manager release the lease (if we still hold it).
    drop(state);
    let _ = task.await;
    if lost { Err(LeaderError::Lost) } else { Ok(()) }
}
