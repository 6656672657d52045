//! Secrets stay secret, and what the operator runs is locked down: after a full
//! cluster → pool → fleet run with a key rotation, no key, password, private key or token
//! appears in the operator's log, in Events or in any status; the Dovecot StatefulSet runs
//! non-root with every capability dropped.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use serde_json::json;
use support::{Operator, wait_condition};

fn random_text(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}-{:x}{:x}",
        nanos,
        nanos.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15
    )
}

fn ceph_key(entity: &str) -> String {
    support::ceph_json(&["auth", "get", entity])[0]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn no_secret_in_logs_events_or_status() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-secrets");
    let (data, index) = (format!("{ns}-data"), format!("{ns}-index"));
    support::create_namespace(&client, &ns).await;
    let keyring = std::fs::read_to_string(support::env("RBOX_E2E_CEPH_KEYRING")).unwrap();
    let admin_key = keyring
        .lines()
        .find_map(|l| l.trim().strip_prefix("key = "))
        .unwrap()
        .trim()
        .to_string();
    support::ceph_secret(
        &client,
        &ns,
        "ceph-admin",
        &keyring,
        &support::env("RBOX_E2E_CEPH_MON_HOST"),
    )
    .await;
    let password = random_text("pw");
    let tls_key = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        random_text("MIIEvQ")
    );
    support::apply_json(
        &client,
        &ns,
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "users"},
            "stringData": {"passwd": format!("alice:{{PLAIN}}{password}::::::\n")},
        }),
    )
    .await;
    support::apply_json(&client, &ns, json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "tls.key": tls_key},
    })).await;
    let mut cluster = support::cluster_json("main", "ceph-admin");
    cluster["spec"]["health"] = json!({"canaryIntervalSeconds": 10});
    support::apply_json(&client, &ns, cluster).await;
    let mut pool = support::pool_json("mail", "main", &data, &index);
    support::apply_json(&client, &ns, pool.clone()).await;
    support::apply_json(&client, &ns, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet", "metadata": {"name": "imap"},
        "spec": {"poolRef": {"name": "mail"}, "image": "dovecot-rbox:test", "replicas": 1,
                 "tls": {"secretName": "tls"},
                 "auth": {"passwdFile": {"secretName": "users"}},
                 "indexStorage": {"emptyDir": {}}},
    })).await;

    let op = Operator::start(&ns).await;
    let long = Duration::from_secs(180);
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "mail",
        "StorageHealthy",
        "True",
        long,
    )
    .await;
    wait_condition(
        &client,
        &ns,
        "dovecotfleets",
        "imap",
        "Available",
        "True",
        long,
    )
    .await;
    let entity = format!("client.rbox.{ns}.mail");
    let old_key = ceph_key(&entity);

    // Rotate the Dovecot key, so both the old and the new key passed through the operator.
    pool["metadata"]["annotations"] = json!({"mail.rbox.io/rotate-key": "1"});
    support::apply_json(&client, &ns, pool).await;
    let new_key = support::wait_for(long, "the key rotation", || {
        let (entity, old) = (entity.clone(), old_key.clone());
        async move {
            let k = ceph_key(&entity);
            (!k.is_empty() && k != old).then_some(k)
        }
    })
    .await;
    // A condition the operator writes with an error message: a missing Secret.
    support::apply_json(&client, &ns, json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster", "metadata": {"name": "broken"},
        "spec": {"ceph": {"external": {"monitorsSecretKey": "mon_host", "keyringSecret": {"name": "missing"}, "user": "client.admin"}}},
    })).await;
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "broken",
        "Ready",
        "False",
        long,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Everything the run produced that a user or a log collector can read.
    let mut haystack = op.log_text();
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    for e in events.list(&Default::default()).await.unwrap().items {
        haystack.push_str(&serde_json::to_string(&e).unwrap());
    }
    for (plural, name) in [
        ("mailclusters", "main"),
        ("mailclusters", "broken"),
        ("mailpools", "mail"),
        ("dovecotfleets", "imap"),
    ] {
        let obj = support::get_json(&client, &ns, plural, name).await.unwrap();
        haystack.push_str(&obj["status"].to_string());
    }
    let token = std::fs::read_to_string(&op.kubeconfig).unwrap();
    let token = token
        .split("token: \"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        haystack.len() > 1000,
        "too little was collected to prove anything"
    );
    for (what, secret) in [
        ("the operator's admin key", admin_key.as_str()),
        ("the old Dovecot key", old_key.as_str()),
        ("the new Dovecot key", new_key.as_str()),
        ("a mail user's password", password.as_str()),
        ("the TLS private key", tls_key.lines().nth(1).unwrap()),
        ("the operator's ServiceAccount token", token.as_str()),
    ] {
        assert!(secret.len() >= 16, "{what}: too short to search for");
        assert!(
            !haystack.contains(secret),
            "{what} appears in the operator's log, Events or status"
        );
    }

    // The Dovecot pods: non-root, no capabilities, no privilege escalation.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let sts = sts.list(&Default::default()).await.unwrap().items;
    assert_eq!(sts.len(), 1);
    let pod = sts[0].spec.template.spec.as_ref().unwrap();
    let pod_sc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert!(pod_sc.run_as_user.is_some_and(|u| u != 0));
    for c in &pod.containers {
        let sc = c
            .security_context
            .as_ref()
            .expect("container securityContext");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        let drop = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.drop.clone())
            .unwrap_or_default();
        assert!(
            drop.iter().any(|d| d == "ALL"),
            "{}: capabilities not dropped",
            c.name
        );
    }

    support::delete_and_wait(
        &client,
        &ns,
        "dovecotfleets",
        "imap",
        Duration::from_secs(60),
    )
    .await;
    support::delete_and_wait(&client, &ns, "mailpools", "mail", Duration::from_secs(60)).await;
    drop(op);
    support::ceph_remove_pool(&data);
    support::ceph_remove_pool(&index);
    let _ = support::ceph(&["auth", "del", &entity]).output();
    support::delete_namespace(&client, &ns).await;
}
