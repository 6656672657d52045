//! End-to-end: MailCluster + MailPool against the real API server and the real micro Ceph,
//! with the operator running as a local process. Ceph state is checked with the `ceph` and
//! `rados` CLIs, never through the operator's own view.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use rbox_operator::api::{MailCluster, MailPool};
use serde_json::{Value, json};
use support::{Operator, ceph, ceph_json, ceph_pool_exists, ceph_remove_pool, env, run, wait_for};

const WAIT: Duration = Duration::from_secs(120);

/// Removes what a test made — also when it fails half-way, so a failed run leaves no
/// namespace stuck on a finalizer and no pool behind on the shared Ceph.
#[derive(Default)]
struct Leftovers {
    namespace: Option<String>,
    pools: Vec<String>,
    rules: Vec<String>,
    profiles: Vec<String>,
    users: Vec<String>,
    files: Vec<std::path::PathBuf>,
}

struct Cleanup(Leftovers);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let this = &self.0;
        if let Some(ns) = &this.namespace {
            // Without an operator the finalizer would hold the namespace forever.
            let _ = support::kubectl(&["-n", ns, "get", "mailpools", "-o", "name"])
                .output()
                .map(|o| {
                    for mp in String::from_utf8_lossy(&o.stdout).lines() {
                        let _ = support::kubectl(&[
                            "-n",
                            ns,
                            "patch",
                            mp,
                            "--type",
                            "merge",
                            "-p",
                            r#"{"metadata":{"finalizers":[]}}"#,
                        ])
                        .output();
                    }
                });
            let _ = support::kubectl(&["delete", "namespace", ns, "--wait=false"]).output();
        }
        for p in &this.pools {
            ceph_remove_pool(p);
        }
        for r in &this.rules {
            let _ = ceph(&["osd", "crush", "rule", "rm", r]).output();
        }
        for p in &this.profiles {
            let _ = ceph(&["osd", "erasure-code-profile", "rm", p]).output();
        }
        for u in &this.users {
            let _ = ceph(&["auth", "del", u]).output();
        }
        for f in &this.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A Secret with the admin keyring and the monitor addresses (what the MailCluster reads).
async fn ceph_secret(client: &Client, ns: &str) {
    let keyring = std::fs::read_to_string(env("RBOX_E2E_CEPH_KEYRING")).expect("admin keyring");
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ceph-admin"},
        "stringData": {"keyring": keyring, "mon_host": env("RBOX_E2E_CEPH_MON_HOST")},
    }))
    .expect("secret");
    api.patch(
        "ceph-admin",
        &PatchParams::apply(support::MANAGER).force(),
        &Patch::Apply(&s),
    )
    .await
    .expect("create secret");
}

async fn apply_cluster(client: &Client, ns: &str) {
    let api: Api<MailCluster> = Api::namespaced(client.clone(), ns);
    let mc: MailCluster = serde_json::from_value(json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": "ceph"},
        "spec": {
            "ceph": {"external": {"monitorsSecretKey": "mon_host",
                                  "keyringSecret": {"name": "ceph-admin"}, "user": "client.admin"}},
            "health": {"canaryIntervalSeconds": 10, "canaryTimeoutSeconds": 10},
        }
    }))
    .expect("mailcluster");
    api.patch(
        "ceph",
        &PatchParams::apply(support::MANAGER).force(),
        &Patch::Apply(&mc),
    )
    .await
    .expect("apply mailcluster");
}

async fn apply_pool(client: &Client, ns: &str, name: &str, spec: Value) {
    let api: Api<MailPool> = Api::namespaced(client.clone(), ns);
    let mp: MailPool = serde_json::from_value(json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("mailpool");
    api.patch(
        name,
        &PatchParams::apply(support::MANAGER).force(),
        &Patch::Apply(&mp),
    )
    .await
    .expect("apply mailpool");
}

fn pool_spec(data: &str, index: &str, extra_data: Value, reclaim: &str) -> Value {
    let mut d = json!({"name": data, "replicated": {"size": 1, "allowSizeOne": true},
                       "failureDomain": "osd", "pgNumMin": 8});
    if let (Some(d), Some(e)) = (d.as_object_mut(), extra_data.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    json!({
        "clusterRef": {"name": "ceph"},
        "data": d,
        "index": {"name": index, "replicated": {"size": 1, "allowSizeOne": true},
                  "failureDomain": "osd", "pgNumMin": 8, "deviceClass": "hdd"},
        "reclaimPolicy": reclaim,
    })
}

fn condition(mp: &MailPool, type_: &str) -> Option<(String, String, String)> {
    mp.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_condition(
    client: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
) -> MailPool {
    let api: Api<MailPool> = Api::namespaced(client.clone(), ns);
    wait_for(
        WAIT,
        &format!("MailPool {ns}/{name} {type_}={status}"),
        || {
            let api = api.clone();
            async move {
                let mp = api.get_opt(name).await.ok()??;
                (condition(&mp, type_)?.0 == status).then_some(mp)
            }
        },
    )
    .await
}

/// One pool's entry of `ceph osd pool ls detail`.
fn pool_detail(pool: &str) -> Value {
    ceph_json(&["osd", "pool", "ls", "detail"])
        .as_array()
        .and_then(|a| a.iter().find(|p| p["pool_name"] == pool).cloned())
        .unwrap_or_else(|| panic!("pool {pool} not in `ceph osd pool ls detail`"))
}

fn pool_get(pool: &str, var: &str) -> Value {
    ceph_json(&["osd", "pool", "get", pool, var])[var].clone()
}

/// `rados put` as the Dovecot user with its own keyring; Ok or the error text.
fn rados_put_as(
    entity: &str,
    keyring: &std::path::Path,
    pool: &str,
    oid: &str,
) -> Result<(), String> {
    let id = entity.trim_start_matches("client.");
    let out = std::process::Command::new("timeout")
        .args(["60", "rados", "-c", &env("RBOX_E2E_CEPH_CONF"), "--id", id])
        .arg("--keyring")
        .arg(keyring)
        .args(["-p", pool, "put", oid, "/etc/hostname"])
        .output()
        .expect("run rados");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn secret_data(client: &Client, ns: &str, name: &str) -> BTreeMap<String, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = api.get(name).await.expect("keyring secret");
    s.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

/// Sum of the writes of some resources on the operator's /metrics.
fn writes_of(metrics: &str, resources: &[&str]) -> f64 {
    resources
        .iter()
        .map(|r| {
            support::metric_value(
                metrics,
                &format!("rbox_operator_kube_api_writes_by_resource_total{{resource=\"{r}\"}}"),
            )
        })
        .sum()
}

/// Apply → Ceph has the pools as asked (size, rule, application, quota), the Dovecot user
/// has exactly its caps and is refused elsewhere, Secret and ConfigMap exist, the canary
/// passes; steady state writes nothing; a spec change is followed; key rotation; deletion
/// with `Delete` is blocked without the confirmation and removes the pools with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn mailpool_lifecycle_against_real_ceph() {
    let client = support::admin_client().await;
    let ns = support::unique("ceph-e2e");
    let (data, index, other) = (
        format!("{ns}-mail"),
        format!("{ns}-index"),
        format!("{ns}-other"),
    );
    let mut cleanup = Cleanup(Leftovers {
        namespace: Some(ns.clone()),
        pools: vec![data.clone(), index.clone(), other.clone()],
        users: vec![format!("client.rbox.{ns}.mail")],
        ..Default::default()
    });
    support::create_namespace(&client, &ns).await;
    ceph_secret(&client, &ns).await;
    let op = Operator::start(&ns).await;
    apply_cluster(&client, &ns).await;
    apply_pool(
        &client,
        &ns,
        "mail",
        pool_spec(
            &data,
            &index,
            json!({"quota": {"maxBytes": "1Gi"}}),
            "Delete",
        ),
    )
    .await;

    // --- Ready, with the canary passing.
    let mp = wait_condition(&client, &ns, "mail", "StorageHealthy", "True").await;
    assert_eq!(
        condition(&mp, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    let st = mp.status.clone().expect("status");
    assert!(!st.data_pool.as_ref().expect("data pool status").adopted);

    // --- Ceph as the CLI sees it.
    let d = pool_detail(&data);
    assert_eq!(d["size"], 1);
    assert_eq!(d["quota_max_bytes"], 1u64 << 30);
    assert!(d["application_metadata"].get("rbox").is_some(), "{d}");
    // Ceph records which MailPool created the pool: deletion trusts this, not the status.
    let uid = mp.metadata.uid.clone().expect("uid");
    assert_eq!(
        d["application_metadata"]["rbox"]["owner"],
        uid.as_str(),
        "{d}"
    );
    assert_eq!(pool_get(&data, "crush_rule"), "rbox-default-osd");
    let rule = ceph_json(&["osd", "crush", "rule", "dump", "rbox-default-osd"]);
    let steps = rule["steps"].to_string();
    assert!(steps.contains("\"type\":\"osd\""), "{steps}");
    let i = pool_detail(&index);
    assert!(i["application_metadata"].get("rbox").is_some());
    // The index pool asked for device class hdd (the local OSD's class).
    assert_eq!(pool_get(&index, "crush_rule"), "rbox-default-osd-hdd");
    let rule = ceph_json(&["osd", "crush", "rule", "dump", "rbox-default-osd-hdd"]);
    assert!(rule["steps"].to_string().contains("default~hdd"), "{rule}");
    // rbox_cfg exists in the data pool (read with the CLI).
    let cfg = run(std::process::Command::new("rados").args([
        "-c",
        &env("RBOX_E2E_CEPH_CONF"),
        "-p",
        &data,
        "get",
        "rbox_cfg",
        "-",
    ]));
    assert!(cfg.contains("\"user_mapping\": \"false\""), "{cfg}");

    // --- The Dovecot user: exactly its caps.
    let entity = st.dovecot_user.clone().expect("dovecot user in status");
    let auth = ceph_json(&["auth", "get", &entity]);
    let caps = &auth[0]["caps"];
    assert_eq!(caps["mon"], "allow r");
    assert_eq!(
        caps["osd"],
        format!("allow rw pool={data}, allow rw pool={index}")
    );
    assert_eq!(caps.as_object().map(|o| o.len()), Some(2), "{caps}");

    // --- Secret and ConfigMap, and the key in the Secret works — on its pools only.
    let sec = secret_data(&client, &ns, "mail-ceph-keyring").await;
    assert!(sec["keyring"].contains(&format!("[{entity}]")));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = cms
        .get("mail-ceph-conf")
        .await
        .expect("ceph.conf configmap");
    let conf = cm.data.unwrap_or_default()["ceph.conf"].clone();
    assert!(conf.contains(&env("RBOX_E2E_CEPH_MON_HOST")), "{conf}");
    let dir = support::e2e_dir().join("test-keyrings");
    std::fs::create_dir_all(&dir).expect("keyring dir");
    let keyring = dir.join(format!("{ns}.keyring"));
    cleanup.0.files.push(keyring.clone());
    std::fs::write(&keyring, &sec["keyring"]).expect("write keyring");
    run(&mut ceph(&["osd", "pool", "create", &other, "8"]));
    rados_put_as(&entity, &keyring, &data, "probe").expect("Dovecot user writes its data pool");
    rados_put_as(&entity, &keyring, &index, "probe").expect("Dovecot user writes its index pool");
    let refused =
        rados_put_as(&entity, &keyring, &other, "probe").expect_err("another pool must refuse");
    assert!(
        refused.contains("Operation not permitted") || refused.contains("(1)"),
        "{refused}"
    );

    // --- Steady state: no Ceph write, no Kubernetes write for the MailPool, while it keeps
    // reconciling (canary every 10 s requeues it).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let before = op.metrics().await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    let after = op.metrics().await;
    let mine = [
        "mailpools",
        "mailpools/status",
        "secrets",
        "configmaps",
        "events",
    ];
    let ceph_w = |m: &str| support::metric_value(m, "rbox_operator_ceph_writes_total");
    let reconciles = |m: &str| {
        support::metric_value(m, "rbox_operator_reconciles_total{controller=\"mailpool\"}")
    };
    let canaries = |m: &str| support::metric_value(m, "rbox_operator_canary_latency_seconds_count");
    assert!(
        reconciles(&after) > reconciles(&before),
        "the MailPool was not reconciled while idle"
    );
    assert!(
        canaries(&after) >= canaries(&before) + 2.0,
        "canaries did not run while idle"
    );
    assert_eq!(
        ceph_w(&after) - ceph_w(&before),
        0.0,
        "Ceph writes in steady state:\n{after}"
    );
    assert_eq!(
        writes_of(&after, &mine) - writes_of(&before, &mine),
        0.0,
        "Kubernetes writes for the MailPool in steady state; the operator says why:\n{}",
        op.log_text()
            .lines()
            .filter(|l| l.contains("status written") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // --- Spec change: quota, compression, a free-form parameter; Ceph follows.
    apply_pool(
        &client,
        &ns,
        "mail",
        pool_spec(
            &data,
            &index,
            json!({"quota": {"maxBytes": "2Gi", "maxObjects": 5000},
                   "compression": {"mode": "aggressive"},
                   "targetSizeRatio": 0.1,
                   "parameters": {"noscrub": "true"}}),
            "Delete",
        ),
    )
    .await;
    wait_for(WAIT, "Ceph to follow the spec change", || {
        let data = data.clone();
        async move {
            let d = pool_detail(&data);
            (d["quota_max_bytes"] == 2u64 << 30
                && d["quota_max_objects"] == 5000
                && d["options"]["compression_mode"] == "aggressive"
                && d["flags_names"].as_str().unwrap_or("").contains("noscrub"))
            .then_some(())
        }
    })
    .await;
    // The parameter removed again: Ceph goes back to what it had.
    apply_pool(
        &client,
        &ns,
        "mail",
        pool_spec(
            &data,
            &index,
            json!({"quota": {"maxBytes": "2Gi", "maxObjects": 5000}}),
            "Delete",
        ),
    )
    .await;
    wait_for(WAIT, "noscrub to be removed again", || {
        let data = data.clone();
        async move {
            (!pool_detail(&data)["flags_names"]
                .as_str()
                .unwrap_or("")
                .contains("noscrub"))
            .then_some(())
        }
    })
    .await;
    // ...and the status forgets it (a field that must be removed, not merged).
    wait_for(
        WAIT,
        "managedParameters to be dropped from the status",
        || {
            let client = client.clone();
            let ns = ns.clone();
            async move {
                let mps: Api<MailPool> = Api::namespaced(client, &ns);
                let mp = mps.get("mail").await.ok()?;
                mp.status?
                    .data_pool?
                    .managed_parameters
                    .is_empty()
                    .then_some(())
            }
        },
    )
    .await;

    // --- Key rotation on request.
    let old_key = sec["key"].clone();
    let mps: Api<MailPool> = Api::namespaced(client.clone(), &ns);
    mps.patch(
        "mail",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"mail.rbox.io/rotate-key": "1"}}})),
    )
    .await
    .expect("annotate rotate-key");
    let new_key = wait_for(WAIT, "the rotated key in the Secret", || {
        let client = client.clone();
        let ns = ns.clone();
        let old = old_key.clone();
        async move {
            let k = secret_data(&client, &ns, "mail-ceph-keyring").await["key"].clone();
            (k != old).then_some(k)
        }
    })
    .await;
    assert_eq!(
        ceph_json(&["auth", "get", &entity])[0]["key"],
        new_key.as_str()
    );

    // --- Delete without confirmation: blocked, says how much mail, nothing removed.
    mps.delete("mail", &DeleteParams::default())
        .await
        .expect("delete mailpool");
    let blocked = wait_condition(&client, &ns, "mail", "DeletionBlocked", "True").await;
    let (_, reason, message) = condition(&blocked, "DeletionBlocked").expect("condition");
    assert_eq!(reason, "ConfirmationMissing");
    // Two probe objects were written by the Dovecot user above.
    assert!(message.contains("hold 2 mail objects"), "{message}");
    assert!(message.contains("mail.rbox.io/confirm-delete"), "{message}");
    assert!(ceph_pool_exists(&data) && ceph_pool_exists(&index));

    // --- With confirmation: gone, with the user.
    mps.patch(
        "mail",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"mail.rbox.io/confirm-delete": data}}})),
    )
    .await
    .expect("confirm");
    wait_for(WAIT, "the MailPool to be gone", || {
        let mps = mps.clone();
        async move { mps.get_opt("mail").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(!ceph_pool_exists(&data) && !ceph_pool_exists(&index));
    let gone = ceph(&["auth", "get", &entity])
        .output()
        .expect("ceph auth get");
    assert!(!gone.status.success(), "the Dovecot user still exists");

    drop(cleanup);
}

/// An existing compatible pool is adopted (and kept on deletion, data intact, with
/// `Retain`); an existing incompatible pool is refused with the difference named and left
/// untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn adoption_retain_and_incompatible_pools() {
    let client = support::admin_client().await;
    let ns = support::unique("ceph-adopt");
    let (data, index) = (format!("{ns}-mail"), format!("{ns}-index"));
    let (ec, ec_index) = (format!("{ns}-ec"), format!("{ns}-ecidx"));
    let cleanup = Cleanup(Leftovers {
        namespace: Some(ns.clone()),
        pools: vec![data.clone(), index.clone(), ec.clone(), ec_index.clone()],
        profiles: vec![format!("{ns}-profile")],
        users: vec![
            format!("client.rbox.{ns}.adopt"),
            format!("client.rbox.{ns}.clash"),
        ],
        ..Default::default()
    });
    // A pool someone made before, with one object in it.
    run(&mut ceph(&["osd", "pool", "create", &data, "8"]));
    run(std::process::Command::new("rados").args([
        "-c",
        &env("RBOX_E2E_CEPH_CONF"),
        "-p",
        &data,
        "put",
        "precious",
        "/etc/hostname",
    ]));
    // An erasure-coded pool the spec will call replicated.
    let profile = format!("{ns}-profile");
    run(&mut ceph(&[
        "osd",
        "erasure-code-profile",
        "set",
        &profile,
        "k=2",
        "m=1",
        "crush-failure-domain=osd",
    ]));
    run(&mut ceph(&[
        "osd", "pool", "create", &ec, "8", "8", "erasure", &profile,
    ]));

    support::create_namespace(&client, &ns).await;
    ceph_secret(&client, &ns).await;
    let _op = Operator::start(&ns).await;
    apply_cluster(&client, &ns).await;
    apply_pool(
        &client,
        &ns,
        "adopt",
        pool_spec(&data, &index, json!({}), "Retain"),
    )
    .await;
    apply_pool(
        &client,
        &ns,
        "clash",
        pool_spec(&ec, &ec_index, json!({}), "Retain"),
    )
    .await;

    let mp = wait_condition(&client, &ns, "adopt", "StorageHealthy", "True").await;
    let st = mp.status.expect("status");
    assert!(
        st.data_pool.expect("data").adopted,
        "an existing pool must be recorded as adopted"
    );
    assert!(!st.index_pool.expect("index").adopted);
    assert!(
        pool_detail(&data)["application_metadata"]
            .get("rbox")
            .is_some()
    );

    let clash = wait_condition(&client, &ns, "clash", "PoolsReady", "False").await;
    let (_, reason, message) = condition(&clash, "PoolsReady").expect("condition");
    assert_eq!(reason, "IncompatiblePool");
    assert!(message.contains("erasure-coded"), "{message}");
    // Untouched: no application tag was added.
    assert!(
        pool_detail(&ec)["application_metadata"]
            .as_object()
            .is_some_and(|o| o.is_empty())
    );

    // Retain: deleting the MailPool keeps both pools and the data.
    let mps: Api<MailPool> = Api::namespaced(client.clone(), &ns);
    for name in ["adopt", "clash"] {
        mps.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_for(WAIT, "both MailPools to be gone", || {
        let mps = mps.clone();
        async move {
            (mps.get_opt("adopt").await.ok()?.is_none()
                && mps.get_opt("clash").await.ok()?.is_none())
            .then_some(())
        }
    })
    .await;
    assert!(ceph_pool_exists(&data) && ceph_pool_exists(&index) && ceph_pool_exists(&ec));
    let kept = run(std::process::Command::new("rados").args([
        "-c",
        &env("RBOX_E2E_CEPH_CONF"),
        "-p",
        &data,
        "get",
        "precious",
        "-",
    ]));
    assert!(!kept.is_empty(), "the adopted pool lost its object");

    drop(cleanup);
}

/// Rook mode: the MailCluster names a Rook CephCluster; the operator reads Rook's mon
/// endpoints ConfigMap and admin Secret (made here as Rook makes them) and connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn rook_mode_reads_rook_endpoints_and_admin_secret() {
    let client = support::admin_client().await;
    let ns = support::unique("ceph-rook");
    let _cleanup = Cleanup(Leftovers {
        namespace: Some(ns.clone()),
        ..Default::default()
    });
    support::create_namespace(&client, &ns).await;
    // Rook writes `a=<ip:port>` with the v1 address.
    let mon_host = env("RBOX_E2E_CEPH_MON_HOST");
    let v1 = mon_host
        .split(',')
        .find_map(|a| a.trim_matches(|c| c == '[' || c == ']').strip_prefix("v1:"))
        .unwrap_or_else(|| panic!("no v1 address in {mon_host}"))
        .to_string();
    let keyring = std::fs::read_to_string(env("RBOX_E2E_CEPH_KEYRING")).expect("admin keyring");
    let key = keyring
        .lines()
        .find_map(|l| l.trim().strip_prefix("key = "))
        .expect("key in the admin keyring")
        .to_string();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rook-ceph-mon-endpoints"},
        "data": {"data": format!("a={v1}"), "mapping": "{}", "maxMonId": "0"},
    }))
    .expect("configmap");
    cms.create(&Default::default(), &cm)
        .await
        .expect("rook endpoints");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "rook-ceph-mon"},
        "stringData": {"ceph-username": "client.admin", "ceph-secret": key},
    }))
    .expect("secret");
    secrets
        .create(&Default::default(), &s)
        .await
        .expect("rook secret");
    let _op = Operator::start(&ns).await;
    let mcs: Api<MailCluster> = Api::namespaced(client.clone(), &ns);
    let mc: MailCluster = serde_json::from_value(json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": "rook"},
        "spec": {"ceph": {"rook": {"cephClusterName": "rook-ceph"}}},
    }))
    .expect("mailcluster");
    mcs.create(&Default::default(), &mc)
        .await
        .expect("create mailcluster");
    let fsid = run(&mut ceph(&["fsid"])).trim().to_string();
    let got = wait_for(WAIT, "the Rook-mode MailCluster to connect", || {
        let mcs = mcs.clone();
        async move {
            let mc = mcs.get("rook").await.ok()?;
            let st = mc.status?;
            st.conditions
                .iter()
                .any(|c| c.type_ == "CephConnected" && c.status == "True")
                .then_some(st)
        }
    })
    .await;
    assert_eq!(got.fsid.as_deref(), Some(fsid.as_str()));
    assert!(got.ceph_version.is_some_and(|v| v.starts_with("16.")));
    assert!(got.capacity.is_some_and(|c| c.total_bytes > 0));
}

/// The erasure-coded path of the planner against the real monitors (one OSD cannot make a
/// k=2 m=1 pool's PGs active, so this drives the Ceph admin layer directly instead of a
/// MailPool waiting for Ready): profile, pool, overwrites, application — then a spec with
/// other k/m is refused and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn erasure_coded_pool_through_mon_commands() {
    use rbox_operator::ceph::Admin;
    use rbox_operator::ceph::pool::{DesiredPool, Layout, Observed, plan_pool};
    let pool = support::unique("ceph-ec");
    let profile = format!("{pool}_ecprofile");
    let _cleanup = Cleanup(Leftovers {
        pools: vec![pool.clone()],
        rules: vec![pool.clone()],
        profiles: vec![profile.clone()],
        ..Default::default()
    });
    let cluster = rbox_core::rados::Cluster::connect(rbox_core::rados::ConnectOptions {
        conf_path: Some(env("RBOX_E2E_CEPH_CONF").into()),
        keyring: Some(env("RBOX_E2E_CEPH_KEYRING").into()),
        ..Default::default()
    })
    .await
    .expect("connect");
    let admin = Admin::new(cluster, None);
    let mut d = DesiredPool {
        layout: Layout::Erasure {
            k: 2,
            m: 1,
            profile: profile.clone(),
        },
        pg_num_min: Some(8),
        ..DesiredPool::replicated(&pool, 1, "osd")
    };
    let plan_now = |d: DesiredPool| {
        let admin = admin.clone();
        async move {
            let pools = admin.pools().await.expect("pools");
            let rules = admin.crush_rules().await.expect("rules");
            let observed = pools.iter().find(|p| p.name == d.name);
            let prof_name = observed
                .map(|p| p.erasure_code_profile.clone())
                .unwrap_or_else(|| format!("{}_ecprofile", d.name));
            let prof = admin.ec_profile(&prof_name).await.expect("profile");
            plan_pool(
                &d,
                &Observed {
                    pool: observed,
                    rules: &rules,
                    ec_profile: prof.as_ref(),
                    pool_all: None,
                },
                &Default::default(),
            )
        }
    };
    let plan = plan_now(d.clone()).await.expect("plan");
    assert!(plan.creates_pool && plan.creates_profile);
    admin.apply(&plan.commands).await.expect("apply");
    let detail = pool_detail(&pool);
    assert_eq!(detail["type"], 3, "{detail}");
    assert_eq!(detail["erasure_code_profile"], profile.as_str());
    assert!(
        detail["flags_names"]
            .as_str()
            .unwrap_or("")
            .contains("ec_overwrites")
    );
    assert!(detail["application_metadata"].get("rbox").is_some());
    let prof = ceph_json(&["osd", "erasure-code-profile", "get", &profile]);
    assert_eq!(
        (prof["k"].as_str(), prof["m"].as_str()),
        (Some("2"), Some("1"))
    );
    assert_eq!(prof["crush-failure-domain"], "osd");
    // Steady: nothing to do.
    assert!(plan_now(d.clone()).await.expect("plan").is_empty());
    // Other k/m: refused, nothing sent.
    d.layout = Layout::Erasure {
        k: 4,
        m: 2,
        profile: profile.clone(),
    };
    let err = plan_now(d).await.expect_err("k/m change must be refused");
    assert!(err.to_string().contains("k=2 m=1 (spec: k=4 m=2)"), "{err}");
}
