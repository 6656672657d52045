//! The API server restarted under a running operator: its watches resume and a change made
//! after the restart is reconciled, without restarting the operator.
//! Restarts the shared API server, so `make test` runs it alone, after the parallel tests
//! (test names start with `serial_`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Operator, wait_condition};

#[tokio::test]
#[ignore = "needs the local environment (make test); run alone: it restarts the API server"]
async fn serial_apiserver_restart_resumes_watches() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-apirestart");
    let (data, index) = (format!("{ns}-data"), format!("{ns}-index"));
    support::create_namespace(&client, &ns).await;
    let keyring = std::fs::read_to_string(support::env("RBOX_E2E_CEPH_KEYRING")).unwrap();
    support::ceph_secret(
        &client,
        &ns,
        "ceph-admin",
        &keyring,
        &support::env("RBOX_E2E_CEPH_MON_HOST"),
    )
    .await;
    support::apply_json(&client, &ns, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster", "metadata": {"name": "main"},
        "spec": {"ceph": {"external": {"monitorsSecretKey": "mon_host", "keyringSecret": {"name": "ceph-admin"}, "user": "client.admin"}}},
    })).await;
    let mut op = Operator::start(&ns).await;
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "main",
        "Ready",
        "True",
        Duration::from_secs(120),
    )
    .await;

    let kube_dir = std::path::Path::new(&support::env("RBOX_E2E_KUBECONFIG"))
        .parent()
        .unwrap()
        .to_path_buf();
    support::run(
        std::process::Command::new(support::repo_root().join("e2e/kube-local"))
            .arg("restart-apiserver")
            .arg(&kube_dir),
    );

    // A new object after the restart is seen through the resumed watch.
    let layout = |n: &str| json!({"name": n, "replicated": {"size": 1, "allowSizeOne": true}, "failureDomain": "osd", "pgNumMin": 8});
    let client = support::admin_client().await;
    support::apply_json(&client, &ns, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool", "metadata": {"name": "mail"},
        "spec": {"clusterRef": {"name": "main"}, "data": layout(&data), "index": layout(&index)},
    })).await;
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
    assert!(support::ceph_pool_exists(&data) && support::ceph_pool_exists(&index));
    assert!(
        op.alive(),
        "the operator exited when the API server restarted:\n{}",
        op.log_text()
    );

    support::delete_and_wait(&client, &ns, "mailpools", "mail", Duration::from_secs(60)).await;
    op.kill();
    support::ceph_remove_pool(&data);
    support::ceph_remove_pool(&index);
    let _ = support::ceph(&["auth", "del", &format!("client.rbox.{ns}.mail")]).output();
    support::delete_namespace(&client, &ns).await;
}
