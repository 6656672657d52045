//! `rbox-operator run`: the long-running operator process.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::controllers::Context;
use crate::runtime::health::{self, Readiness};
use crate::runtime::leader::{self, LeaderConfig};
use crate::runtime::metrics::Metrics;
use crate::runtime::shutdown;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "RBOX_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "RBOX_LEADER_NAMESPACE", default_value = "rbox-system")]
    pub leader_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "RBOX_LEADER_LEASE",
        default_value = "rbox-operator-leader"
    )]
    pub leader_lease: String,
    /// This replica's identity in the Lease (defaults to the pod / host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Run without leader election (a single replica, e.g. on a laptop).
    #[arg(long, env = "RBOX_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Watch only this namespace (default: all namespaces). Lets several operators share one
    /// API server, each with its own namespace (tests do this).
    #[arg(long, env = "RBOX_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "RBOX_LOG_JSON")]
    pub log_json: bool,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.log_json);
    let shutdown = shutdown::on_signal();
    let metrics = Metrics::new();
    let ready = Readiness::default();
    // Every request is counted, so /metrics proves that steady state writes nothing.
    let (client, counts) =
        crate::k8s::write_counter::counting_client(kube::Config::infer().await?)?;
    tokio::spawn(mirror_request_counts(
        counts,
        metrics.clone(),
        shutdown.clone(),
    ));

    let server = tokio::spawn(health::serve(
        args.metrics_addr,
        metrics.clone(),
        ready.clone(),
        shutdown.clone(),
    ));
    let ctx = Context::new(
        client.clone(),
        metrics.clone(),
        args.watch_namespace.clone(),
    );
    let work = |token: CancellationToken| controllers(ctx.clone(), ready.clone(), token);
    let result = if args.no_leader_election {
        work(shutdown.clone()).await;
        Ok(())
    } else {
        let identity = args.identity.clone().unwrap_or_else(default_identity);
        let cfg = LeaderConfig {
            namespace: args.leader_namespace.clone(),
            lease_name: args.leader_lease.clone(),
            identity,
            lease_duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
        };
        ready.set_ready(true);
        leader::run_as_leader(client.clone(), cfg, metrics.clone(), shutdown.clone(), work).await
    };
    shutdown.cancel();
    let _ = server.await;
    result.map_err(Into::into)
}

/// The controllers, running until `token` is cancelled. Not ready until their watches have
/// their initial lists (a standby that just won the lease included).
async fn controllers(ctx: Context, ready: Readiness, token: CancellationToken) {
    ready.set_ready(false);
    tracing::info!(namespace = ?ctx.watch_namespace, "controllers started");
    crate::controllers::run_all(ctx, token, ready).await;
    tracing::info!("controllers stopped");
}

async fn mirror_request_counts(
    counts: crate::k8s::write_counter::RequestCounts,
    metrics: Metrics,
    token: CancellationToken,
) {
    loop {
        metrics.kube_reads.set(counts.reads() as i64);
        metrics.kube_writes.set(counts.writes() as i64);
        for write in counts.take_write_log() {
            let path = write.split_once(' ').map(|(_, p)| p).unwrap_or(&write);
            let resource = crate::k8s::write_counter::resource_of(path);
            metrics
                .kube_writes_by_resource
                .get_or_create(&crate::runtime::metrics::ResourceLabels { resource })
                .inc();
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("rbox-operator-{}", std::process::id()))
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube=warn,tower=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::fake_api::{CLUSTERS, FLEETS, FakeApi, POOLS};

    /// Defect: `/readyz` said ready before any watch had started. Ready now means every
    /// controller has its initial list; a standby that wins the lease starts over as not ready.
    #[tokio::test]
    async fn not_ready_until_every_controller_has_listed() {
        let api = FakeApi::builder().gate(POOLS).start();
        let ctx = Context::new(api.client.clone(), Metrics::new(), Some("ns".into()));
        let ready = Readiness::default();
        ready.set_ready(true); // a standby is ready while it waits for the lease
        let token = CancellationToken::new();
        let run = tokio::spawn(controllers(ctx, ready.clone(), token.clone()));
        // Two controllers have listed and watch; the MailPool list is not answered yet.
        api.wait_for("the MailCluster watch", |s| {
            s.path == CLUSTERS && s.is_watch()
        })
        .await;
        api.wait_for("the DovecotFleet watch", |s| {
            s.path == FLEETS && s.is_watch()
        })
        .await;
        assert!(!ready.is_ready(), "ready before the MailPools were listed");
        api.release(POOLS);
        api.wait_until("ready", || ready.is_ready().then_some(()))
            .await;
        token.cancel();
        run.await.unwrap();
    }
}
