//! Bad input against the real environment: each broken object gets a clear condition and a
//! Warning Event; the operator neither panics nor changes data it was not asked to.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use serde_json::json;
use support::Operator;

fn cluster(name: &str, secret: &str) -> serde_json::Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster", "metadata": {"name": name},
        "spec": {"ceph": {"external": {"monitorsSecretKey": "mon_host", "keyringSecret": {"name": secret}, "user": "client.admin"},
                          "timeouts": {"connectSeconds": 5, "operationSeconds": 5}}},
    })
}

fn pool(name: &str, cluster: &str, data: &str, index: &str) -> serde_json::Value {
    let layout = |n: &str| json!({"name": n, "replicated": {"size": 1, "allowSizeOne": true}, "failureDomain": "osd", "pgNumMin": 8});
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool", "metadata": {"name": name},
        "spec": {"clusterRef": {"name": cluster}, "data": layout(data), "index": layout(index)},
    })
}

/// The message of the first condition among `types` whose status is `status`.
async fn failing(
    client: &kube::Client,
    ns: &str,
    plural: &str,
    name: &str,
    types: &[&str],
    status: &str,
) -> String {
    support::wait_for(
        Duration::from_secs(120),
        &format!("{plural}/{name} to report the problem"),
        || async {
            let obj = support::get_json(client, ns, plural, name).await?;
            types.iter().find_map(|t| {
                support::condition(&obj, t)
                    .filter(|c| c.0 == status)
                    .map(|c| c.2)
            })
        },
    )
    .await
}

async fn warning_event_for(events: &Api<Event>, name: &str) -> bool {
    events
        .list(&Default::default())
        .await
        .map(|l| {
            l.items.iter().any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.involved_object.name.as_deref() == Some(name)
            })
        })
        .unwrap_or(false)
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn bad_input_gets_clear_conditions_and_events() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-bad");
    support::create_namespace(&client, &ns).await;
    let mon_host = support::env("RBOX_E2E_CEPH_MON_HOST");
    let keyring = std::fs::read_to_string(support::env("RBOX_E2E_CEPH_KEYRING")).unwrap();

    // A Secret with garbage, monitors nobody listens on, a user without OSD caps.
    support::ceph_secret(
        &client,
        &ns,
        "garbage",
        "\u{1}not a keyring at all",
        &mon_host,
    )
    .await;
    support::ceph_secret(&client, &ns, "nomon", &keyring, "127.0.0.1:1").await;
    let weak = format!("client.rbox-weak-{ns}");
    let weak_keyring = support::run(&mut support::ceph(&[
        "auth",
        "get-or-create",
        &weak,
        "mon",
        "allow r",
    ]));
    support::ceph_secret(&client, &ns, "weak", &weak_keyring, &mon_host).await;
    support::ceph_secret(&client, &ns, "ceph-admin", &keyring, &mon_host).await;
    let mut weak_cluster = cluster("weak", "weak");
    weak_cluster["spec"]["ceph"]["external"]["user"] = json!(weak);
    support::apply_json(&client, &ns, weak_cluster).await;
    for (name, secret) in [
        ("nosecret", "missing"),
        ("garbage", "garbage"),
        ("nomon", "nomon"),
        ("main", "ceph-admin"),
    ] {
        support::apply_json(&client, &ns, cluster(name, secret)).await;
    }
    // An existing erasure-coded pool that a MailPool wants as a replicated one.
    let ec_pool = format!("{ns}-ec");
    support::run(&mut support::ceph(&[
        "osd", "pool", "create", &ec_pool, "8", "8", "erasure",
    ]));
    let ec_before = support::ceph_json(&["osd", "pool", "get", &ec_pool, "all"]);
    support::apply_json(
        &client,
        &ns,
        pool("incompatible", "main", &ec_pool, &format!("{ns}-idx")),
    )
    .await;
    support::apply_json(
        &client,
        &ns,
        pool("weakpool", "weak", &format!("{ns}-wd"), &format!("{ns}-wi")),
    )
    .await;
    support::apply_json(&client, &ns, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet", "metadata": {"name": "orphan"},
        "spec": {"poolRef": {"name": "no-such-pool"}, "image": "dovecot-rbox:test", "replicas": 1,
                 "auth": {"passwdFile": {"secretName": "users"}}, "indexStorage": {"emptyDir": {}}},
    })).await;

    let mut op = Operator::start(&ns).await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);

    let msg = failing(
        &client,
        &ns,
        "mailclusters",
        "nosecret",
        &["CephConnected", "Ready"],
        "False",
    )
    .await;
    assert!(msg.contains("missing"), "missing Secret not named: {msg}");
    let msg = failing(
        &client,
        &ns,
        "mailclusters",
        "garbage",
        &["CephConnected", "Ready"],
        "False",
    )
    .await;
    assert!(
        msg.to_lowercase().contains("key"),
        "garbage keyring not explained: {msg}"
    );
    let msg = failing(
        &client,
        &ns,
        "mailclusters",
        "nomon",
        &["CephConnected", "Ready"],
        "False",
    )
    .await;
    assert!(!msg.is_empty(), "unreachable monitors without a message");
    let msg = failing(
        &client,
        &ns,
        "mailpools",
        "weakpool",
        &["PoolsReady", "Ready"],
        "False",
    )
    .await;
    assert!(
        msg.contains("cap") || msg.contains("allow"),
        "the missing cap is not named: {msg}"
    );
    let msg = failing(
        &client,
        &ns,
        "mailpools",
        "incompatible",
        &["PoolsReady", "Ready"],
        "False",
    )
    .await;
    assert!(
        msg.contains("erasure") || msg.contains("replicated"),
        "incompatible layout not explained: {msg}"
    );
    let msg = failing(
        &client,
        &ns,
        "dovecotfleets",
        "orphan",
        &["Degraded"],
        "True",
    )
    .await;
    assert!(
        msg.contains("no-such-pool"),
        "the missing MailPool is not named: {msg}"
    );

    for name in [
        "nosecret",
        "garbage",
        "nomon",
        "weakpool",
        "incompatible",
        "orphan",
    ] {
        support::wait_for(
            Duration::from_secs(30),
            &format!("a Warning Event for {name}"),
            || {
                let events = events.clone();
                async move { warning_event_for(&events, name).await.then_some(()) }
            },
        )
        .await;
    }
    // Nothing changed on the pool the operator refused to adopt.
    let ec_after = support::ceph_json(&["osd", "pool", "get", &ec_pool, "all"]);
    assert_eq!(ec_before, ec_after, "the incompatible pool was modified");
    assert!(op.alive(), "the operator exited:\n{}", op.log_text());
    assert!(
        !op.log_text().contains("panicked"),
        "the operator panicked:\n{}",
        op.log_text()
    );

    support::delete_and_wait(
        &client,
        &ns,
        "mailpools",
        "incompatible",
        Duration::from_secs(60),
    )
    .await;
    // The MailPool whose cluster user lacks caps cannot clean up its Dovecot user in Ceph, so
    // its deletion waits (the finalizer stays, by design); the test removes the finalizer.
    support::force_delete(&client, &ns, "mailpools", "weakpool").await;
    op.kill();
    support::ceph_remove_pool(&ec_pool);
    for p in [format!("{ns}-idx"), format!("{ns}-wd"), format!("{ns}-wi")] {
        support::ceph_remove_pool(&p);
    }
    let _ = support::ceph(&["auth", "del", &weak]).output();
    support::delete_namespace(&client, &ns).await;
}
