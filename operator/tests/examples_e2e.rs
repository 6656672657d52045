//! `examples/minimal.yaml` works on the local environment: applied as written (only the Ceph
//! pool names get a unique suffix, so parallel tests and the demo never share pools), with the
//! operator running, the MailCluster and MailPool become Ready and the DovecotFleet Available.

mod support;

use std::time::Duration;

use rbox_operator::api::conditions;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn minimal_example_becomes_ready() {
    let client = support::admin_client().await;
    let ns = support::unique("example-minimal");
    support::create_namespace(&client, &ns).await;
    let operator = support::Operator::start(&ns).await;
    // What the header of minimal.yaml tells users to create first.
    support::ceph_admin_secret(&client, &ns, "ceph-admin").await;

    let mut names = Vec::new();
    let mut pools = Vec::new();
    for mut doc in support::yaml_documents(&support::repo_root().join("examples/minimal.yaml")) {
        let kind = doc["kind"].as_str().expect("kind").to_string();
        if kind == "MailPool" {
            for part in ["data", "index"] {
                let name = format!(
                    "{}-{ns}",
                    doc["spec"][part]["name"].as_str().expect("pool name")
                );
                doc["spec"][part]["name"] = Value::String(name.clone());
                pools.push(name);
            }
        }
        let name = doc["metadata"]["name"].as_str().expect("name").to_string();
        names.push((kind, name));
        support::apply_json(&client, &ns, doc).await;
    }
    let name_of = |kind: &str| {
        names
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| panic!("minimal.yaml has no {kind}"))
    };
    let (cluster, pool, fleet) = (
        name_of("MailCluster"),
        name_of("MailPool"),
        name_of("DovecotFleet"),
    );

    support::wait_condition(
        &client,
        &ns,
        "mailclusters",
        &cluster,
        conditions::READY,
        "True",
        WAIT,
    )
    .await;
    let mp = support::wait_condition(
        &client,
        &ns,
        "mailpools",
        &pool,
        conditions::READY,
        "True",
        WAIT,
    )
    .await;
    support::wait_condition(
        &client,
        &ns,
        "dovecotfleets",
        &fleet,
        conditions::AVAILABLE,
        "True",
        WAIT,
    )
    .await;
    // Ceph itself has the pools (checked with the ceph CLI, not the operator's view).
    for p in &pools {
        assert!(support::ceph_pool_exists(p), "pool {p} missing in Ceph");
    }
    assert_eq!(
        mp["status"]["dataPool"]["name"],
        Value::String(pools[0].clone())
    );

    // Clean up while the operator still handles finalizers (reclaimPolicy Retain keeps the
    // pools; the test removes them itself).
    for (plural, name) in [
        ("dovecotfleets", &fleet),
        ("mailpools", &pool),
        ("mailclusters", &cluster),
    ] {
        support::delete_and_wait(&client, &ns, plural, name, WAIT).await;
    }
    drop(operator);
    support::delete_namespace(&client, &ns).await;
    for p in &pools {
        support::ceph_remove_pool(p);
    }
}
