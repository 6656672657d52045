//! The controllers and what they share.
//!
//! Each controller lives in its own module and exposes `run(ctx, token)`: a kube-runtime
//! `Controller` that runs until the token is cancelled. `run_all` starts them side by side.

pub mod ceph_errors;
pub mod cluster_conn;
pub mod connections;
pub mod dovecotfleet;
pub mod instrument;
pub mod mailcluster;
pub mod mailpool;
pub mod watch;

#[cfg(test)]
pub(crate) mod fake_api;
#[cfg(test)]
mod watch_tests;

use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::runtime::backoff::Backoff;
use crate::runtime::health::Readiness;
use crate::runtime::metrics::Metrics;

/// What every reconcile can reach. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    /// One librados connection per MailCluster (`namespace/name`).
    pub connections: Arc<connections::Connections>,
    pub backoff: Arc<Backoff>,
    /// Watch only this namespace (`None`: all namespaces).
    pub watch_namespace: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("watch_namespace", &self.watch_namespace)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, metrics: Metrics, watch_namespace: Option<String>) -> Self {
        Self {
            client,
            metrics,
            connections: Arc::default(),
            backoff: Arc::new(Backoff::new(
                std::time::Duration::from_secs(2),
                std::time::Duration::from_secs(300),
            )),
            watch_namespace,
        }
    }

    /// An `Api` for kind `K` over the watched namespace (or all namespaces).
    pub fn watched_api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        match &self.watch_namespace {
            Some(ns) => kube::Api::namespaced(self.client.clone(), ns),
            None => kube::Api::all(self.client.clone()),
        }
    }
}

/// Run every controller until `token` is cancelled. `ready` turns true once every
/// controller's main watch has its initial list (`/readyz`), not before.
pub async fn run_all(ctx: Context, token: CancellationToken, ready: Readiness) {
    let (cluster_started, cluster_listed) = tokio::sync::oneshot::channel();
    let (pool_started, pool_listed) = tokio::sync::oneshot::channel();
    let (fleet_started, fleet_listed) = tokio::sync::oneshot::channel();
    let listed = async move {
        let all = futures::future::try_join3(cluster_listed, pool_listed, fleet_listed).await;
        if all.is_ok() {
            tracing::info!("every controller has its initial list: ready");
            ready.set_ready(true);
        }
    };
    // Controllers register here as they are written: futures::join!(a::run(..), b::run(..)).
    futures::join!(
        mailcluster::run(ctx.clone(), token.clone(), cluster_started),
        mailpool::run(ctx.clone(), token.clone(), pool_started),
        dovecotfleet::run(ctx.clone(), token.clone(), fleet_started),
        listed,
    );
}
