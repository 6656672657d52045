//! DovecotFleet end to end on the local environment: the real chain MailCluster → MailPool →
//! DovecotFleet (real Ceph pools and cephx user, real API server, kwok pods, the real
//! garbage collector of kube-controller-manager, real doveconf in the operator).
//!
//! One story, in order: the fleet waits for its pool (missing, then not PoolsReady); then ConfigMap, StatefulSet, Services and
//! PDB exist and the pods are Ready (`Available`); a steady fleet writes nothing; a snippet that
//! breaks the config is refused and changes nothing; a good change rolls the pods one at a time;
//! scaling up and down; a protocol turned off loses its Service; the pool's keyring Secret
//! deleted gives `Degraded`; deleting the fleet garbage-collects everything it owned.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use rbox_operator::api::{DovecotFleet, MailCluster, MailPool};
use serde_json::json;
use support::{Operator, wait_for};

const HASH: &str = "mail.rbox.io/config-hash";
const FLEET: &str = "imap";
const WAIT: Duration = Duration::from_secs(90);

async fn apply<K>(api: &Api<K>, name: &str, value: serde_json::Value)
where
    K: Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    api.patch(
        name,
        &PatchParams::apply(support::MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

async fn patch_fleet(api: &Api<DovecotFleet>, spec: serde_json::Value) {
    api.patch(
        FLEET,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .expect("patch fleet");
}

/// (status, reason, message) of condition `t`.
fn condition(f: &DovecotFleet, t: &str) -> Option<(String, String, String)> {
    f.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn is(f: &DovecotFleet, t: &str, status: &str) -> bool {
    condition(f, t).is_some_and(|c| c.0 == status)
}

async fn fleet_until(
    api: &Api<DovecotFleet>,
    what: &str,
    pred: impl Fn(&DovecotFleet) -> bool,
) -> DovecotFleet {
    let pred = &pred;
    wait_for(WAIT, what, || async move {
        let f = api.get(FLEET).await.ok()?;
        pred(&f).then_some(f)
    })
    .await
}

fn pod_hash(p: &Pod) -> Option<String> {
    p.metadata.annotations.as_ref()?.get(HASH).cloned()
}

fn pod_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a pod watch saw: the largest number of wanted pods not Ready at once, and each pod's
/// config hash changes in order.
#[derive(Debug, Default)]
struct RolloutLog {
    max_not_ready: usize,
    hash_changes: Vec<(String, String)>,
}

/// Watch the fleet's pods and record the rollout, until the returned handle is aborted.
fn watch_pods(
    pods: Api<Pod>,
    wanted: usize,
    log: Arc<Mutex<RolloutLog>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = watcher::Config::default().labels(&format!("mail.rbox.io/fleet={FLEET}"));
        let mut stream = watcher(pods, cfg).boxed();
        let mut seen: BTreeMap<String, Pod> = BTreeMap::new();
        let mut initial: BTreeMap<String, Pod> = BTreeMap::new();
        let mut ready_once = false;
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            match ev {
                watcher::Event::Init => initial.clear(),
                watcher::Event::InitApply(p) => {
                    initial.insert(p.metadata.name.clone().unwrap_or_default(), p);
                }
                watcher::Event::InitDone => {
                    seen = std::mem::take(&mut initial);
                    ready_once = true;
                }
                watcher::Event::Apply(p) => {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let old = seen.get(&name).and_then(pod_hash);
                    if let Some(new) = pod_hash(&p)
                        && old.as_ref() != Some(&new)
                    {
                        log.lock().unwrap().hash_changes.push((name.clone(), new));
                    }
                    seen.insert(name, p);
                }
                watcher::Event::Delete(p) => {
                    seen.remove(&p.metadata.name.clone().unwrap_or_default());
                }
            }
            if ready_once {
                let ready = seen.values().filter(|p| pod_ready(p)).count();
                let not_ready = wanted.saturating_sub(ready);
                let mut l = log.lock().unwrap();
                l.max_not_ready = l.max_not_ready.max(not_ready);
            }
        }
    })
}

async fn ready_pods(pods: &Api<Pod>) -> Vec<Pod> {
    let lp = kube::api::ListParams::default().labels(&format!("mail.rbox.io/fleet={FLEET}"));
    pods.list(&lp)
        .await
        .map(|l| l.items.into_iter().filter(pod_ready).collect())
        .unwrap_or_default()
}

async fn exists<K>(api: &Api<K>, name: &str) -> bool
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    matches!(api.get_opt(name).await, Ok(Some(_)))
}

/// The passwd-file Secret of the tests' fleets.
async fn apply_users(secrets: &Api<Secret>) {
    apply(
        secrets,
        "mail-users",
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mail-users"},
            "stringData": {"passwd": "alice:{PLAIN}secret::::::\n"}
        }),
    )
    .await;
}

/// The MailPool of the tests (one OSD: size 1), with this test's own pool names.
async fn apply_pool(pools: &Api<MailPool>, data_pool: &str, index_pool: &str) {
    apply(pools, "mail", json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool", "metadata": {"name": "mail"},
        "spec": {"clusterRef": {"name": "local"},
            "data": {"name": data_pool, "replicated": {"size": 1, "allowSizeOne": true}, "failureDomain": "osd", "pgNumMin": 8},
            "index": {"name": index_pool, "replicated": {"size": 1, "allowSizeOne": true}, "failureDomain": "osd", "pgNumMin": 8}}
    })).await;
}

/// The MailCluster of the tests and the Secret it reads (the environment's admin keyring).
async fn apply_cluster(secrets: &Api<Secret>, clusters: &Api<MailCluster>) {
    let keyring = std::fs::read_to_string(support::env("RBOX_E2E_CEPH_KEYRING")).unwrap();
    apply(
        secrets,
        "ceph-admin",
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ceph-admin"},
            "stringData": {"keyring": keyring, "mon_host": support::env("RBOX_E2E_CEPH_MON_HOST")}
        }),
    )
    .await;
    apply(clusters, "local", json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster", "metadata": {"name": "local"},
        "spec": {"ceph": {"external": {"monitors": [support::env("RBOX_E2E_CEPH_MON_HOST")],
                 "keyringSecret": {"name": "ceph-admin"}, "user": "client.admin"}}}
    })).await;
}

/// Delete the MailPool and MailCluster while the operator runs (it removes their finalizers;
/// Retain keeps the Ceph pools, which the Cleanup guard removes).
async fn teardown(pools: &Api<MailPool>, clusters: &Api<MailCluster>) {
    pools
        .delete("mail", &DeleteParams::default())
        .await
        .unwrap();
    clusters
        .delete("local", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(WAIT, "MailPool and MailCluster deleted", || async move {
        (!exists(pools, "mail").await && !exists(clusters, "local").await).then_some(())
    })
    .await;
}

struct Cleanup {
    client: Client,
    ns: String,
    pv: String,
    pools: Vec<String>,
}

impl Cleanup {
    /// Create the test's namespace; the guard removes it, its PV, its pools and its cephx
    /// user. Returns the guard and the test's data and index pool names.
    async fn namespace(client: &Client, ns: &str) -> (Cleanup, String, String) {
        let (data_pool, index_pool) = (format!("{ns}-data"), format!("{ns}-index"));
        let guard = Cleanup {
            client: client.clone(),
            ns: ns.to_string(),
            pv: ns.to_string(),
            pools: vec![data_pool.clone(), index_pool.clone()],
        };
        support::create_namespace(client, ns).await;
        (guard, data_pool, index_pool)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.pools {
            support::ceph_remove_pool(p);
        }
        // The MailPool's cephx user (Retain keeps it): every entity named after this namespace.
        if let Some(entities) = support::ceph_json(&["auth", "ls"])["auth_dump"].as_array() {
            for e in entities {
                if let Some(name) = e["entity"].as_str()
                    && name.contains(&self.ns)
                {
                    let _ = support::ceph(&["auth", "del", name]).output();
                }
            }
        }
        let _ = support::kubectl(&["delete", "namespace", &self.ns, "--wait=false"]).output();
        // If the test failed before its own cleanup, the operator that would clear the
        // MailPool's and MailCluster's finalizers is gone: clear them so the namespace goes.
        for (kind, name) in [("mailpool", "mail"), ("mailcluster", "local")] {
            let _ = support::kubectl(&[
                "-n",
                &self.ns,
                "patch",
                kind,
                name,
                "--type",
                "merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ])
            .output();
        }
        let _ = support::kubectl(&["delete", "pv", &self.pv, "--wait=false"]).output();
        let _ = &self.client;
    }
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn fleet_lifecycle() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-fleet");
    let (_cleanup, data_pool, index_pool) = Cleanup::namespace(&client, &ns).await;
    let _op = Operator::start(&ns).await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let fleets: Api<DovecotFleet> = Api::namespaced(client.clone(), &ns);
    let pools: Api<MailPool> = Api::namespaced(client.clone(), &ns);
    let clusters: Api<MailCluster> = Api::namespaced(client.clone(), &ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // The index volume: a ReadWriteMany claim bound to a PV of its own (kwok runs no volume
    // plugin; the PV controller of kube-controller-manager binds them).
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    apply(
        &pvs,
        &ns,
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": ns},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                     "storageClassName": ns, "nfs": {"server": "127.0.0.1", "path": "/index"}}
        }),
    )
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    apply(&pvcs, "dovecot-index", json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "dovecot-index"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": ns,
                 "resources": {"requests": {"storage": "1Gi"}}}
    })).await;
    apply_users(&secrets).await;

    // 1. The fleet first: it waits for its MailPool and says so.
    apply(&fleets, FLEET, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet", "metadata": {"name": FLEET},
        "spec": {
            "poolRef": {"name": "mail"},
            "image": "example.invalid/dovecot-rbox:2.3.19",
            "replicas": 3,
            "auth": {"passwdFile": {"secretName": "mail-users"}},
            "indexStorage": {"persistentVolumeClaim": {"claimName": "dovecot-index"}},
            "terminationGracePeriodSeconds": 60
        }
    })).await;
    let f = fleet_until(
        &fleets,
        "Degraded=True while the MailPool is missing",
        |f| is(f, "Degraded", "True"),
    )
    .await;
    let (_, reason, msg) = condition(&f, "Degraded").unwrap();
    assert_eq!(reason, "MailPoolNotFound", "{msg}");
    assert!(msg.contains("waiting for MailPool mail"), "{msg}");
    assert!(
        !exists(&stss, FLEET).await,
        "a StatefulSet before the pool exists"
    );

    // 2. The real chain. The MailPool first, before its MailCluster: the pool exists but is
    //    not PoolsReady, and the fleet keeps waiting and says so.
    apply_pool(&pools, &data_pool, &index_pool).await;
    let f = fleet_until(&fleets, "Degraded=True (MailPoolNotReady)", |f| {
        condition(f, "Degraded").is_some_and(|c| c.0 == "True" && c.1 == "MailPoolNotReady")
    })
    .await;
    let msg = condition(&f, "Degraded").unwrap().2;
    assert!(
        msg.contains("waiting for MailPool mail to be PoolsReady"),
        "{msg}"
    );
    assert_eq!(condition(&f, "Progressing").unwrap().1, "MailPoolNotReady");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !exists(&stss, FLEET).await,
        "a StatefulSet before the pool is ready"
    );
    assert!(
        !exists(&cms, "imap-config").await,
        "a ConfigMap before the pool is ready"
    );

    //    Then the MailCluster: the MailPool controller makes the pools, the cephx user, the
    //    keyring Secret and the ceph.conf ConfigMap, and the fleet rolls out.
    apply_cluster(&secrets, &clusters).await;

    // 3. Everything exists, the pods are Ready, the fleet is Available.
    let f = fleet_until(&fleets, "Available=True with 3 ready pods", |f| {
        is(f, "Available", "True") && f.status.as_ref().is_some_and(|s| s.ready_replicas == 3)
    })
    .await;
    let pool = pools.get("mail").await.unwrap();
    let pool_status = pool.status.clone().unwrap();
    let keyring_secret = pool_status.keyring_secret.clone().unwrap();
    let st = f.status.clone().unwrap();
    assert_eq!(condition(&f, "Degraded").unwrap().1, "AsExpected");
    assert_eq!(st.observed_generation, f.metadata.generation);
    let hash1 = st.config_hash.clone().expect("status.configHash");
    let sts = stss.get(FLEET).await.unwrap();
    let tmpl_hash = sts
        .spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[HASH]
        .clone();
    assert_eq!(tmpl_hash, hash1);
    let cm = cms.get("imap-config").await.expect("ConfigMap");
    let conf = &cm.data.as_ref().unwrap()["dovecot.conf"];
    assert!(
        conf.contains(&format!("rbox_pool_name = {data_pool}")),
        "{conf}"
    );
    assert!(conf.contains(&format!("rbox_index_pool_name = {index_pool}")));
    assert!(conf.contains(&format!(
        "rados_user_name = {}",
        pool_status.dovecot_user.clone().unwrap()
    )));
    let vols = sts
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .clone()
        .unwrap();
    let ceph_vol = vols
        .iter()
        .find(|v| v.name == "ceph")
        .unwrap()
        .projected
        .clone()
        .unwrap();
    let srcs = ceph_vol.sources.unwrap();
    assert_eq!(srcs[1].secret.as_ref().unwrap().name, keyring_secret);
    for svc in ["imap-imap", "imap-lmtp", "imap-headless"] {
        assert!(exists(&svcs, svc).await, "Service {svc}");
    }
    assert!(!exists(&svcs, "imap-pop3").await);
    let pdb = pdbs.get(FLEET).await.expect("PDB");
    assert_eq!(
        pdb.spec.unwrap().max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let ready = ready_pods(&pods).await;
    assert_eq!(ready.len(), 3);
    assert!(
        ready
            .iter()
            .all(|p| pod_hash(p).as_deref() == Some(hash1.as_str()))
    );
    let f = fleet_until(&fleets, "Progressing=False (Complete)", |f| {
        is(f, "Progressing", "False")
    })
    .await;

    // 4. Steady state writes nothing: the fleet and what it owns keep their resourceVersions.
    let rv = |o: &kube::api::ObjectMeta| o.resource_version.clone();
    let before = (
        rv(&f.metadata),
        rv(&stss.get(FLEET).await.unwrap().metadata),
        rv(&cms.get("imap-config").await.unwrap().metadata),
        rv(&svcs.get("imap-imap").await.unwrap().metadata),
    );
    // A change of something the fleet watches (its MailPool's keyring Secret gets a label)
    // triggers a reconcile that must write nothing.
    secrets
        .patch(
            &keyring_secret,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"e2e/touch": "1"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = (
        rv(&fleets.get(FLEET).await.unwrap().metadata),
        rv(&stss.get(FLEET).await.unwrap().metadata),
        rv(&cms.get("imap-config").await.unwrap().metadata),
        rv(&svcs.get("imap-imap").await.unwrap().metadata),
    );
    assert_eq!(before, after, "a steady fleet was written to");

    // 5. A snippet that breaks the config: refused with doveconf's message, nothing changes.
    let sts_gen = stss.get(FLEET).await.unwrap().metadata.generation;
    let cm_rv = rv(&cms.get("imap-config").await.unwrap().metadata);
    patch_fleet(&fleets, json!({"extraConfig": "bogus_setting = 1\n"})).await;
    let f = fleet_until(&fleets, "Degraded=True (ConfigRefused)", |f| {
        condition(f, "Degraded").is_some_and(|c| c.0 == "True" && c.1 == "ConfigRefused")
    })
    .await;
    let msg = condition(&f, "Degraded").unwrap().2;
    assert!(msg.contains("Unknown setting: bogus_setting"), "{msg}");
    assert!(msg.contains("/etc/dovecot/dovecot.conf line"), "{msg}");
    // Users also see it in `kubectl describe` / `kubectl events`.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    wait_for(WAIT, "a Warning Event ConfigRefused on the fleet", || {
        let events = &events;
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("ConfigRefused")
                        && e.type_.as_deref() == Some("Warning")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(FLEET)
                        && e.note
                            .as_deref()
                            .is_some_and(|n| n.contains("bogus_setting"))
                })
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stss.get(FLEET).await.unwrap().metadata.generation,
        sts_gen,
        "StatefulSet changed"
    );
    assert_eq!(
        rv(&cms.get("imap-config").await.unwrap().metadata),
        cm_rv,
        "ConfigMap changed"
    );
    assert!(is(&fleets.get(FLEET).await.unwrap(), "Available", "True"));
    assert_eq!(ready_pods(&pods).await.len(), 3);

    // 6. A good change: the hash changes and the pods roll one at a time (never more than
    //    one of the three not Ready — what the PDB allows).
    let log = Arc::new(Mutex::new(RolloutLog::default()));
    let watch = watch_pods(pods.clone(), 3, log.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    patch_fleet(
        &fleets,
        json!({"extraConfig": "mail_max_userip_connections = 20\n"}),
    )
    .await;
    let f = fleet_until(&fleets, "all 3 pods on the new config hash", |f| {
        f.status.as_ref().is_some_and(|s| {
            s.config_hash.as_deref() != Some(hash1.as_str())
                && s.updated_replicas == 3
                && s.ready_replicas == 3
                && s.current_revision == s.update_revision
        }) && is(f, "Degraded", "False")
    })
    .await;
    let hash2 = f.status.clone().unwrap().config_hash.unwrap();
    wait_for(WAIT, "3 ready pods with the new hash", || {
        let (pods, hash2) = (&pods, &hash2);
        async move {
            let r = ready_pods(pods).await;
            (r.len() == 3 && r.iter().all(|p| pod_hash(p).as_ref() == Some(hash2))).then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.abort();
    let log = std::mem::take(&mut *log.lock().unwrap());
    eprintln!(
        "rollout: at most {} of 3 pods not Ready at once; hash changes in order: {:?}",
        log.max_not_ready,
        log.hash_changes.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let rolled: Vec<&String> = log
        .hash_changes
        .iter()
        .filter(|(_, h)| *h == hash2)
        .map(|(p, _)| p)
        .collect();
    let mut distinct = rolled.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "every pod rolled once: {:?}",
        log.hash_changes
    );
    assert!(
        log.max_not_ready <= 1,
        "{} pods were not Ready at once during the rollout",
        log.max_not_ready
    );
    let conf = cms.get("imap-config").await.unwrap().data.unwrap()["dovecot.conf"].clone();
    assert!(conf.ends_with("mail_max_userip_connections = 20\n"));

    // 7. Scale up and down (no config change, so no roll).
    patch_fleet(&fleets, json!({"replicas": 5})).await;
    fleet_until(&fleets, "5 ready replicas", |f| {
        f.status
            .as_ref()
            .is_some_and(|s| s.ready_replicas == 5 && s.replicas == 5)
            && is(f, "Available", "True")
    })
    .await;
    assert_eq!(ready_pods(&pods).await.len(), 5);
    patch_fleet(&fleets, json!({"replicas": 2})).await;
    let f = fleet_until(&fleets, "2 replicas", |f| {
        f.status
            .as_ref()
            .is_some_and(|s| s.ready_replicas == 2 && s.replicas == 2)
            && is(f, "Progressing", "False")
    })
    .await;
    assert_eq!(
        f.status.unwrap().config_hash.as_deref(),
        Some(hash2.as_str())
    );
    wait_for(WAIT, "2 pods left", || {
        let pods = &pods;
        async move { (ready_pods(pods).await.len() == 2).then_some(()) }
    })
    .await;

    // 8. A protocol turned off loses its Service.
    patch_fleet(&fleets, json!({"protocols": {"lmtp": {"enabled": false}}})).await;
    wait_for(WAIT, "the LMTP Service to be deleted", || {
        let svcs = &svcs;
        async move { (!exists(svcs, "imap-lmtp").await).then_some(()) }
    })
    .await;
    assert!(exists(&svcs, "imap-imap").await);

    // 9. The MailPool's keyring Secret deleted. What must hold: the MailPool controller puts
    //    a new Secret back, the running StatefulSet is never touched, the fleet ends
    //    Degraded=False, and if the fleet saw the Secret missing at all (the MailPool
    //    controller may restore it first: that is not a failure) it said exactly that. The
    //    reason text itself is unit-tested (`missing_prerequisites_block_with_clear_reasons`).
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let seen2 = seen.clone();
    let fleets2 = fleets.clone();
    let watch = tokio::spawn(async move {
        let cfg = watcher::Config::default().fields(&format!("metadata.name={FLEET}"));
        let mut s = watcher(fleets2, cfg).boxed();
        while let Some(Ok(ev)) = s.next().await {
            if let watcher::Event::Apply(f) | watcher::Event::InitApply(f) = ev
                && let Some((st, reason, msg)) = condition(&f, "Degraded")
                && st == "True"
            {
                seen2.lock().unwrap().push((reason, msg));
            }
        }
    });
    let sts_gen = stss.get(FLEET).await.unwrap().metadata.generation;
    let old_uid = secrets.get(&keyring_secret).await.unwrap().metadata.uid;
    secrets
        .delete(&keyring_secret, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        WAIT,
        "the MailPool controller to recreate the keyring Secret",
        || {
            let (secrets, name, old_uid) = (&secrets, &keyring_secret, &old_uid);
            async move {
                let s = secrets.get_opt(name).await.ok().flatten()?;
                (s.metadata.uid != *old_uid && s.metadata.deletion_timestamp.is_none())
                    .then_some(())
            }
        },
    )
    .await;
    fleet_until(&fleets, "Degraded=False after the Secret is back", |f| {
        is(f, "Degraded", "False")
    })
    .await;
    watch.abort();
    for (reason, msg) in seen.lock().unwrap().iter() {
        assert_eq!(reason, "KeyringSecretMissing", "{msg}");
        assert!(
            msg.contains(&format!("Secret {keyring_secret}")) && msg.contains("does not exist"),
            "{msg}"
        );
    }
    assert_eq!(
        stss.get(FLEET).await.unwrap().metadata.generation,
        sts_gen,
        "the running StatefulSet changed"
    );

    // 10. Delete the fleet: the garbage collector removes everything it owned.
    fleets
        .delete(FLEET, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(120),
        "owned objects garbage-collected",
        || {
            let (stss, svcs, cms, pdbs, pods) = (&stss, &svcs, &cms, &pdbs, &pods);
            async move {
                let gone = !exists(stss, FLEET).await
                    && !exists(svcs, "imap-imap").await
                    && !exists(svcs, "imap-headless").await
                    && !exists(cms, "imap-config").await
                    && !exists(pdbs, FLEET).await
                    && pods
                        .list(
                            &kube::api::ListParams::default()
                                .labels(&format!("mail.rbox.io/fleet={FLEET}")),
                        )
                        .await
                        .is_ok_and(|l| l.items.is_empty());
                gone.then_some(())
            }
        },
    )
    .await;
    // The pool and its keyring are not the fleet's: they stay.
    assert!(exists(&pools, "mail").await);

    teardown(&pools, &clusters).await;
    support::delete_namespace(&client, &ns).await;
}

/// Where the operator cannot run doveconf, the configuration is applied unchecked and the fleet
/// says why (the documented fallback): Available, `Degraded=False` with `ConfigNotChecked`.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn fleet_without_doveconf_is_applied_and_says_unchecked() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-fleet-nocheck");
    let (_cleanup, data_pool, index_pool) = Cleanup::namespace(&client, &ns).await;
    let _op = Operator::start_with(
        &ns,
        &["--no-leader-election"],
        &[("RBOX_DOVECONF", "/nonexistent/doveconf")],
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let fleets: Api<DovecotFleet> = Api::namespaced(client.clone(), &ns);
    let pools: Api<MailPool> = Api::namespaced(client.clone(), &ns);
    let clusters: Api<MailCluster> = Api::namespaced(client.clone(), &ns);
    apply_users(&secrets).await;
    apply_cluster(&secrets, &clusters).await;
    apply_pool(&pools, &data_pool, &index_pool).await;
    apply(&fleets, FLEET, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet", "metadata": {"name": FLEET},
        "spec": {"poolRef": {"name": "mail"}, "image": "example.invalid/dovecot-rbox:2.3.19",
                 "replicas": 1, "auth": {"passwdFile": {"secretName": "mail-users"}},
                 "indexStorage": {"emptyDir": {}}}
    })).await;
    let f = fleet_until(&fleets, "Available with ConfigNotChecked", |f| {
        is(f, "Available", "True")
            && condition(f, "Degraded").is_some_and(|c| c.0 == "False" && c.1 == "ConfigNotChecked")
    })
    .await;
    let msg = condition(&f, "Degraded").unwrap().2;
    assert!(msg.contains("/nonexistent/doveconf"), "{msg}");
    assert_eq!(condition(&f, "EphemeralIndex").unwrap().1, "SingleReplica");
    teardown(&pools, &clusters).await;
    support::delete_namespace(&client, &ns).await;
}
