//! The controllers' watches against the fake API server: what a deleted object leaves
//! behind, a malformed MailCluster, Secrets as metadata, watch errors.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::fake_api::{self, CLUSTERS, FLEETS, FakeApi, POOLS, SECRETS};
use super::{Context, dovecotfleet, mailcluster, mailpool};
use crate::runtime::metrics::Metrics;

fn context(api: &FakeApi) -> Context {
    Context::new(api.client.clone(), Metrics::new(), Some("ns".into()))
}

fn started() -> super::watch::Started {
    tokio::sync::oneshot::channel().0
}

/// Runs a controller until dropped.
struct Running(CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn spawn<F: Future<Output = ()> + Send + 'static>(
    run: impl FnOnce(CancellationToken) -> F,
) -> Running {
    let token = CancellationToken::new();
    tokio::spawn(run(token.clone()));
    Running(token)
}

/// Defect: a deleted MailCluster kept its librados connection until the operator restarted.
/// Its Delete event drops it now, and so does a relist that no longer has it (a deletion
/// during a watch outage, never seen as an event).
#[tokio::test]
async fn a_deleted_mailcluster_drops_its_connection() {
    let api = FakeApi::builder()
        .list(CLUSTERS, vec![fake_api::mailcluster("ceph")])
        .start();
    let ctx = context(&api);
    ctx.connections.touch("ns/ceph");
    ctx.connections.touch("ns/deleted-while-away");
    let _run = spawn({
        let ctx = ctx.clone();
        |t| mailcluster::run(ctx, t, started())
    });
    // The reconcile of ns/ceph ran (it reads the keyring Secret) and the watch is open.
    api.wait_for("the keyring read", |s| s.path == format!("{SECRETS}/admin"))
        .await;
    api.wait_for("the watch", |s| s.path == CLUSTERS && s.is_watch())
        .await;
    assert!(
        !ctx.connections.contains("ns/deleted-while-away"),
        "a MailCluster missing from the list keeps its connection"
    );
    assert!(ctx.connections.contains("ns/ceph"));

    let mut gone = fake_api::mailcluster("ceph");
    gone["metadata"]["resourceVersion"] = json!("2");
    api.push(CLUSTERS, vec![json!({"type": "DELETED", "object": gone})]);
    api.wait_until("the connection dropped", || {
        (!ctx.connections.contains("ns/ceph")).then_some(())
    })
    .await;
    assert!(ctx.connections.is_empty());
}

/// Defect: the fleet controller's retry counts of deleted fleets stayed forever.
#[tokio::test]
async fn a_deleted_fleet_forgets_its_retry_count() {
    let fleet = json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet",
        "metadata": {"name": "f", "namespace": "ns", "uid": "uid-f", "resourceVersion": "1",
                     "generation": 1},
        "spec": {"poolRef": {"name": "mail"}, "image": "example.org/dovecot-rbox:2.3.19",
                 "auth": {"passwdFile": {"secretName": "users"}},
                 "indexStorage": {"persistentVolumeClaim": {"claimName": "index"}}}
    });
    // Every read of the fleet's MailPool fails: each reconcile fails.
    let api = FakeApi::builder()
        .list(FLEETS, vec![fleet.clone()])
        .fail(&format!("{POOLS}/mail"), 500)
        .start();
    let ctx = context(&api);
    let _run = spawn({
        let ctx = ctx.clone();
        |t| dovecotfleet::run(ctx, t, started())
    });
    api.wait_until("a failed reconcile", || {
        (ctx.backoff.failures("dovecotfleet:ns/f") > 0).then_some(())
    })
    .await;
    let mut gone = fleet;
    gone["metadata"]["resourceVersion"] = json!("2");
    api.push(FLEETS, vec![json!({"type": "DELETED", "object": gone})]);
    api.wait_until("the retry count forgotten", || {
        ctx.backoff.is_empty().then_some(())
    })
    .await;
}

/// Defect: the MailPool controller watched MailClusters unguarded; one malformed MailCluster
/// failed the whole list, so no MailCluster change reached any MailPool.
#[tokio::test]
async fn a_malformed_mailcluster_does_not_stop_cluster_changes_reaching_pools() {
    let mut bad = fake_api::mailcluster("bad");
    bad["spec"] = json!({"ceph": 5});
    let api = FakeApi::builder()
        .list(CLUSTERS, vec![bad, fake_api::mailcluster("ceph")])
        .list(POOLS, vec![fake_api::mailpool("mail", "ceph")])
        .start();
    let ctx = context(&api);
    let _run = spawn({
        let ctx = ctx.clone();
        |t| mailpool::run(ctx, t, started())
    });
    let pool_reads = || {
        api.seen()
            .iter()
            .filter(|s| s.path == format!("{POOLS}/mail"))
            .count()
    };
    api.wait_until("the first reconcile", || (pool_reads() >= 1).then_some(()))
        .await;
    let before = pool_reads();
    let mut changed = fake_api::mailcluster("ceph");
    changed["metadata"]["resourceVersion"] = json!("2");
    changed["metadata"]["generation"] = json!(2);
    api.push(
        CLUSTERS,
        vec![json!({"type": "MODIFIED", "object": changed})],
    );
    api.wait_until(
        "the MailPool reconciled after its MailCluster changed",
        || (pool_reads() > before).then_some(()),
    )
    .await;
}

/// Defect: the MailPool controller watched its Secrets whole, keyring values included.
#[tokio::test]
async fn owned_secrets_are_watched_as_metadata_only() {
    let api = FakeApi::builder().start();
    let ctx = context(&api);
    let _run = spawn({
        let ctx = ctx.clone();
        |t| mailpool::run(ctx, t, started())
    });
    let list = api
        .wait_for("the Secret list", |s| s.path == SECRETS && !s.is_watch())
        .await;
    assert!(
        list.accept.contains("as=PartialObjectMetadataList"),
        "Secrets listed whole: Accept {:?}",
        list.accept
    );
    let watch = api
        .wait_for("the Secret watch", |s| s.path == SECRETS && s.is_watch())
        .await;
    assert!(
        watch.accept.contains("as=PartialObjectMetadata"),
        "Secrets watched whole: Accept {:?}",
        watch.accept
    );
}

/// Defect: watch errors (a 403 after an RBAC change) were dropped: no log, no metric.
#[tokio::test]
async fn watch_errors_are_counted() {
    let api = FakeApi::builder().fail(CLUSTERS, 403).start();
    let ctx = context(&api);
    let _run = spawn({
        let ctx = ctx.clone();
        |t| mailcluster::run(ctx, t, started())
    });
    api.wait_until("a counted watch error", || {
        ctx.metrics
            .encode()
            .lines()
            .any(|l| l.starts_with(r#"rbox_operator_watch_errors_total{controller="mailcluster"}"#))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
