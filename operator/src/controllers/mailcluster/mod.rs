//! The MailCluster controller: connect to Ceph (external monitors + keyring Secret, or a Rook
//! CephCluster's endpoints and admin Secret), keep the shared connection healthy, and report
//! connection, health, fsid, version and capacity.
//!
//! Pipeline: read (object, Secret) → validate → connect and observe (reads only) → build the
//! status (pure, [`status`]) → write it only when it changed. No finalizer: nothing in Ceph
//! belongs to a MailCluster.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::ceph_errors::Error;
use super::instrument::{forget_backoff, instrumented, now, object_key, retry};
use super::watch::{self, Started};
use super::{Context, cluster_conn};
use crate::api::MailCluster;
use crate::k8s::apply::patch_status_if_changed;
use crate::k8s::events::Events;

pub const CONTROLLER: &str = "mailcluster";
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ClusterCtx {
    pub base: Context,
    pub events: Events,
}

pub async fn run(ctx: Context, token: CancellationToken, started: Started) {
    let api: Api<DeserializeGuard<MailCluster>> = ctx.watched_api();
    let forget_retries = forget_backoff(&ctx, CONTROLLER);
    let connections = ctx.connections.clone();
    let (objects, store) = watch::main_watch(
        api,
        watcher::Config::default().any_semantic(),
        started,
        move |gone| {
            // A deleted MailCluster's librados connection (threads, monitor session) goes
            // with it; MailPools on it fail with ClusterNotFound before connecting.
            connections.forget_where(gone);
            forget_retries(gone);
        },
    );
    let metrics = ctx.metrics.clone();
    let cctx = Arc::new(ClusterCtx {
        events: Events::new(ctx.client.clone(), "rbox-operator/mailcluster"),
        base: ctx,
    });
    let results = Controller::for_stream(objects, store)
        .trigger_backoff(crate::runtime::watch_backoff::WatchBackoff::default())
        .graceful_shutdown_on(async move { token.cancelled().await })
        .run(reconcile, error_policy, cctx);
    watch::drain(CONTROLLER, metrics, results).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<MailCluster>>,
    ctx: Arc<ClusterCtx>,
) -> Result<Action, Error> {
    let Some(mc) = crate::k8s::events::well_formed(&obj, &ctx.events).await else {
        return Ok(Action::await_change());
    };
    let key = object_key(mc);
    instrumented(
        &ctx.base,
        CONTROLLER,
        &key,
        DEADLINE,
        reconcile_cluster(mc, &ctx),
    )
    .await
}

async fn reconcile_cluster(mc: &MailCluster, ctx: &ClusterCtx) -> Result<Action, Error> {
    let ns = mc.namespace().unwrap_or_default();
    let api: Api<MailCluster> = Api::namespaced(ctx.base.client.clone(), &ns);
    let interval = Duration::from_secs(u64::from(mc.spec.health.canary_interval_seconds.max(10)));
    let (seen, err) = match observe(&ctx.base, mc).await {
        Ok(seen) => (seen, None),
        Err(e) => {
            if e.is_connection_fault() {
                ctx.base.connections.invalidate(&object_key(mc)).await;
            }
            let seen = status::Seen::Failed {
                reason: e.reason().into(),
                message: e.to_string(),
            };
            (seen, Some(e))
        }
    };
    let desired = status::build(mc.status.as_ref(), mc.metadata.generation, &seen, now());
    let changed =
        patch_status_if_changed(&api, &mc.name_any(), mc.status.as_ref(), &desired).await?;
    match err {
        Some(e) => {
            if changed {
                // Events only when the state changes: a down cluster does not flood them.
                ctx.events
                    .warning(mc, e.reason(), "Connect", e.to_string())
                    .await;
            }
            Err(e)
        }
        None => Ok(Action::requeue(interval)),
    }
}

/// Connect (shared connection) and read health, fsid, version and capacity: reads only.
async fn observe(ctx: &Context, mc: &MailCluster) -> Result<status::Seen, Error> {
    let info = cluster_conn::resolve(ctx, mc).await?;
    let conn = cluster_conn::connect(ctx, &info).await?;
    let admin = cluster_conn::admin(ctx, &conn);
    let health = admin.health().await?;
    let version = admin.version().await?;
    Ok(status::Seen::Connected { health, version })
}

fn error_policy(
    obj: Arc<DeserializeGuard<MailCluster>>,
    _err: &Error,
    ctx: Arc<ClusterCtx>,
) -> Action {
    retry(&ctx.base, CONTROLLER, &object_key(obj.as_ref()))
}
