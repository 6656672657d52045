//! The behaviour suite (`rbox_core::testsuite`) against the real micro Ceph, exactly the
//! cases the in-memory backend passes in plain `cargo test`. `make test` starts the cluster.

use std::sync::Arc;
use std::time::Duration;

use rbox_core::backend::librados::LibradosBackend;
use rbox_core::rados::{Cluster, ConnectOptions};
use serde_json::json;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the local environment; run `make test` (or `e2e/env up` and source its env file)")
    })
}

async fn create_pool(cluster: &Cluster, name: &str) {
    cluster
        .mon_command(
            &json!({"prefix": "osd pool create", "pool": name, "pg_num": 8, "format": "json"}),
        )
        .await
        .unwrap_or_else(|e| panic!("create pool {name}: {e}"));
    cluster
        .mon_command(&json!({"prefix": "osd pool application enable", "pool": name, "app": "rbox"}))
        .await
        .unwrap_or_else(|e| panic!("tag pool {name}: {e}"));
}

async fn delete_pool(cluster: &Cluster, name: &str) {
    let _ = cluster
        .mon_command(
            &json!({"prefix": "osd pool rm", "pool": name, "pool2": name,
            "yes_i_really_really_mean_it": true}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local environment (make test)"]
async fn behaviour_suite_on_librados() {
    let cluster = Cluster::connect(ConnectOptions {
        conf_path: Some(env("RBOX_E2E_CEPH_CONF").into()),
        keyring: Some(env("RBOX_E2E_CEPH_KEYRING").into()),
        connect_timeout: Duration::from_secs(15),
        op_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await
    .expect("connect to the micro Ceph");
    let tag = format!(
        "{}-{}",
        std::process::id(),
        rbox_core::format::Guid128::generate().nsec()
    );
    let (mail, index) = (format!("suite-mail-{tag}"), format!("suite-index-{tag}"));
    create_pool(&cluster, &mail).await;
    create_pool(&cluster, &index).await;
    let backend = Arc::new(LibradosBackend::new(cluster.clone()));
    let result = tokio::spawn({
        let (mail, index) = (mail.clone(), index.clone());
        async move { rbox_core::testsuite::run_all(backend, &mail, &index).await }
    })
    .await;
    delete_pool(&cluster, &mail).await;
    delete_pool(&cluster, &index).await;
    let report = result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    assert_eq!(report.passed.len(), rbox_core::testsuite::cases().len());
}
