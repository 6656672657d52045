//! Faults against the real environment: Ceph daemons stopped and started under a running
//! operator, and the operator itself killed at random points of its reconciles.
//! Each test that stops daemons gets a micro Ceph of its own, so parallel tests are untouched.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{MicroCeph, Operator, wait_condition};

const INTERVAL: u64 = 10; // canaryIntervalSeconds of the clusters under test

fn cluster(name: &str, secret: &str) -> serde_json::Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": name},
        "spec": {
            "ceph": {
                "external": {"monitorsSecretKey": "mon_host", "keyringSecret": {"name": secret}, "user": "client.admin"},
                "timeouts": {"connectSeconds": 5, "operationSeconds": 5},
            },
            "health": {"canaryIntervalSeconds": INTERVAL, "canaryTimeoutSeconds": 10},
        }
    })
}

fn generation(obj: &serde_json::Value) -> (i64, i64) {
    (
        obj["metadata"]["generation"].as_i64().unwrap_or(0),
        obj["status"]["observedGeneration"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn ceph_mon_and_osd_faults_degrade_and_recover() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-fault");
    let fault = MicroCeph::start(&format!("{ns}-ceph"));
    support::create_namespace(&client, &ns).await;
    support::ceph_secret(
        &client,
        &ns,
        "ceph-fault",
        &fault.keyring(),
        &fault.mon_host(),
    )
    .await;
    let main_keyring = std::fs::read_to_string(support::env("RBOX_E2E_CEPH_KEYRING")).unwrap();
    support::ceph_secret(
        &client,
        &ns,
        "ceph-main",
        &main_keyring,
        &support::env("RBOX_E2E_CEPH_MON_HOST"),
    )
    .await;
    support::apply_json(&client, &ns, cluster("faulty", "ceph-fault")).await;
    support::apply_json(&client, &ns, cluster("steady", "ceph-main")).await;
    support::apply_json(
        &client,
        &ns,
        support::pool_json("fpool", "faulty", "fault-data", "fault-index"),
    )
    .await;
    let mut op = Operator::start(&ns).await;
    let long = Duration::from_secs(180);
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "faulty",
        "Ready",
        "True",
        long,
    )
    .await;
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "steady",
        "Ready",
        "True",
        long,
    )
    .await;
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "fpool",
        "StorageHealthy",
        "True",
        long,
    )
    .await;

    // Monitor down: the faulty cluster turns Degraded within two health intervals (plus the
    // connect/operation timeouts of the call that notices).
    fault.stop_daemon("mon");
    let t0 = Instant::now();
    let limit = Duration::from_secs(2 * INTERVAL + 5 + 5 + 5);
    let degraded = wait_condition(
        &client,
        &ns,
        "mailclusters",
        "faulty",
        "CephConnected",
        "False",
        limit,
    )
    .await;
    eprintln!("mon down -> CephConnected=False after {:?}", t0.elapsed());
    let (status, reason, message) = support::condition(&degraded, "Degraded").expect("Degraded");
    assert_eq!(
        status, "True",
        "a cluster without monitors is not Degraded ({reason}: {message})"
    );
    assert!(
        !message.is_empty(),
        "Degraded without a message (reason {reason})"
    );
    let ready = support::condition(&degraded, "Ready").map(|c| c.0);
    assert_eq!(
        ready.as_deref(),
        Some("False"),
        "a cluster without monitors still Ready"
    );

    // Other objects keep reconciling while that cluster hangs: a spec change of the steady
    // cluster is observed.
    let mut changed = cluster("steady", "ceph-main");
    changed["spec"]["health"]["canaryIntervalSeconds"] = json!(INTERVAL + 1);
    support::apply_json(&client, &ns, changed).await;
    support::wait_for(
        Duration::from_secs(30),
        "the steady cluster's new generation to be observed",
        || async {
            let obj = support::get_json(&client, &ns, "mailclusters", "steady").await?;
            let (g, o) = generation(&obj);
            (g == o && support::condition(&obj, "Ready")?.0 == "True").then_some(())
        },
    )
    .await;
    assert!(
        op.alive(),
        "the operator exited while a monitor was down:\n{}",
        op.log_text()
    );

    // Monitor back: Ready again without intervention.
    fault.start_daemon("mon");
    let t0 = Instant::now();
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "faulty",
        "Ready",
        "True",
        Duration::from_secs(120),
    )
    .await;
    eprintln!("mon back -> Ready after {:?}", t0.elapsed());
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "fpool",
        "StorageHealthy",
        "True",
        long,
    )
    .await;

    // OSD down: the canary cannot store mail.
    fault.stop_daemon("osd");
    let t0 = Instant::now();
    let sick = wait_condition(
        &client,
        &ns,
        "mailpools",
        "fpool",
        "StorageHealthy",
        "False",
        // The next reconcile (at most an interval away) reads from the data pool: three
        // attempts of the 5 s operation timeout, or the 10 s canary timeout, then the status
        // write; the rest is slack for a loaded 2-core machine.
        Duration::from_secs(2 * INTERVAL + 3 * 6 + 10 + 40),
    )
    .await;
    eprintln!("osd down -> StorageHealthy=False after {:?}", t0.elapsed());
    let (_, _, message) = support::condition(&sick, "StorageHealthy").unwrap();
    assert!(
        !message.is_empty(),
        "StorageHealthy=False without the error"
    );
    fault.start_daemon("osd");
    let t0 = Instant::now();
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "fpool",
        "StorageHealthy",
        "True",
        Duration::from_secs(180),
    )
    .await;
    eprintln!("osd back -> StorageHealthy=True after {:?}", t0.elapsed());
    assert!(
        op.alive(),
        "the operator exited during the faults:\n{}",
        op.log_text()
    );
    assert!(
        !op.log_text().contains("panicked"),
        "the operator panicked:\n{}",
        op.log_text()
    );

    support::delete_and_wait(&client, &ns, "mailpools", "fpool", Duration::from_secs(60)).await;
    drop(op);
    support::delete_namespace(&client, &ns).await;
}

/// Kill the operator with SIGKILL at random points of its reconciles, 20 times, while the spec
/// changes underneath; then let it converge and check that Ceph and Kubernetes hold exactly
/// one of everything and that no data was deleted.
#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn sigkill_twenty_times_converges() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-kill");
    let (data, index) = (format!("{ns}-data"), format!("{ns}-index"));
    support::create_namespace(&client, &ns).await;
    support::ceph_admin_secret(&client, &ns, "ceph-admin").await;
    support::apply_json(&client, &ns, cluster("main", "ceph-admin")).await;
    let mut spec = support::pool_json("mail", "main", &data, &index);
    support::apply_json(&client, &ns, spec.clone()).await;

    // First convergence, then a mail-like object the kills must never remove.
    let op = Operator::start(&ns).await;
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "mail",
        "PoolsReady",
        "True",
        Duration::from_secs(180),
    )
    .await;
    drop(op);
    let sentinel = std::env::temp_dir().join(format!("{ns}.sentinel"));
    std::fs::write(&sentinel, b"From: a@b\r\n\r\nkeep me").unwrap();
    support::run(
        std::process::Command::new("rados")
            .args([
                "-c",
                &support::env("RBOX_E2E_CEPH_CONF"),
                "-p",
                &data,
                "-N",
                "alice",
                "put",
                "sentinel",
            ])
            .arg(&sentinel),
    );

    // 20 kills at pseudo-random moments (a fixed seed per run is printed for reproduction).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..20u64 {
        // Change something Ceph-side every other round so kills land inside real work.
        if round % 2 == 0 {
            spec["spec"]["data"]["quota"] = json!({"maxObjects": 1000 + round});
            spec["metadata"]["annotations"] =
                json!({"mail.rbox.io/rotate-key": format!("r{round}")});
            support::apply_json(&client, &ns, spec.clone()).await;
        }
        let mut op = Operator::start(&ns).await;
        tokio::time::sleep(Duration::from_millis(200 + next() % 3000)).await;
        op.sigkill();
    }

    // Converge.
    let op = Operator::start(&ns).await;
    let obj = support::wait_for(
        Duration::from_secs(180),
        "convergence after 20 kills",
        || async {
            let obj = support::get_json(&client, &ns, "mailpools", "mail").await?;
            let (g, o) = generation(&obj);
            (g == o && support::condition(&obj, "PoolsReady")?.0 == "True").then_some(obj)
        },
    )
    .await;

    // Exactly our two pools, with the last quota.
    let pools = support::ceph_json(&["osd", "pool", "ls"]);
    let ours: Vec<_> = pools
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| p.starts_with(&ns))
        .collect();
    assert_eq!(ours.len(), 2, "pools of this test: {ours:?}");
    let quota = support::ceph_json(&["osd", "pool", "get-quota", &data]);
    assert_eq!(
        quota["quota_max_objects"], 1018,
        "the last spec's quota: {quota}"
    );
    // Exactly one Dovecot cephx user for this MailPool.
    let auth = support::ceph_json(&["auth", "ls"]);
    let users: Vec<_> = auth["auth_dump"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["entity"].as_str())
        .filter(|e| e.starts_with(&format!("client.rbox.{ns}.")))
        .collect();
    assert_eq!(
        users,
        vec![format!("client.rbox.{ns}.mail")],
        "Dovecot users"
    );
    // Exactly one keyring Secret and one ceph.conf ConfigMap, and the Secret's key is the one
    // Ceph has now (the last rotation won, no stale key handed to Dovecot).
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &ns);
    let owned: Vec<_> = secrets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| {
            s.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.kind == "MailPool"))
        })
        .collect();
    assert_eq!(owned.len(), 1, "keyring Secrets owned by the MailPool");
    let key_in_ceph = support::ceph_json(&["auth", "get", users[0]]);
    let key_in_ceph = key_in_ceph[0]["key"].as_str().unwrap().to_string();
    let data_map = owned[0].data.clone().unwrap_or_default();
    let secret_text: String = data_map
        .values()
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .collect();
    assert!(
        secret_text.contains(&key_in_ceph),
        "the keyring Secret does not hold Ceph's current key"
    );
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), &ns);
    let owned_cms = cms
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| {
            c.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.kind == "MailPool"))
        })
        .count();
    assert_eq!(owned_cms, 1, "ceph.conf ConfigMaps owned by the MailPool");
    // Nothing deleted: the sentinel mail is still there, byte for byte.
    let got = support::run(std::process::Command::new("rados").args([
        "-c",
        &support::env("RBOX_E2E_CEPH_CONF"),
        "-p",
        &data,
        "-N",
        "alice",
        "get",
        "sentinel",
        "-",
    ]));
    assert_eq!(got, "From: a@b\r\n\r\nkeep me");
    assert!(support::condition(&obj, "Ready").is_some());

    support::delete_and_wait(&client, &ns, "mailpools", "mail", Duration::from_secs(60)).await;
    drop(op);
    support::ceph_remove_pool(&data);
    support::ceph_remove_pool(&index);
    let _ = support::ceph(&["auth", "del", users[0]]).output();
    let _ = std::fs::remove_file(sentinel);
    support::delete_namespace(&client, &ns).await;
}
