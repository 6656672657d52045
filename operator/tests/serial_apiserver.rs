//! The API server restarted under a running operator: its watches resume and a change made
//! after the restart is reconciled, without restarting the operator.
//! Restarts the shared API server, so `make test` runs it alone, after the parallel tests
//! (test names start with `serial_`).

mod support;

use std::time::{Duration, Instant};

use support::{Operator, wait_condition};

#[tokio::test]
#[ignore = "needs the local environment (make test); run alone: it restarts the API server"]
async fn serial_apiserver_restart_resumes_watches() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-apirestart");
    let (data, index) = support::main_cluster(&client, &ns).await;
    let mut op = Operator::start(&ns).await;
    let minute = Duration::from_secs(120);
    wait_condition(
        &client,
        &ns,
        "mailclusters",
        "main",
        "Ready",
        "True",
        minute,
    )
    .await;

    let kubeconfig = support::env("RBOX_E2E_KUBECONFIG");
    let kube_dir = std::path::Path::new(&kubeconfig).parent().unwrap();
    support::run(
        std::process::Command::new(support::repo_root().join("e2e/kube-local"))
            .arg("restart-apiserver")
            .arg(kube_dir),
    );
    let restarted = Instant::now();

    // A new object after the restart is seen through the resumed watch.
    let client = support::admin_client().await;
    let pool = support::pool_json("mail", "main", &data, &index);
    support::apply_json(&client, &ns, pool).await;
    let long = Duration::from_secs(180);
    wait_condition(
        &client,
        &ns,
        "mailpools",
        "mail",
        "PoolsReady",
        "True",
        long,
    )
    .await;
    eprintln!(
        "a MailPool created after the API server restart was PoolsReady {:?} later",
        restarted.elapsed()
    );
    assert!(support::ceph_pool_exists(&data) && support::ceph_pool_exists(&index));
    assert!(
        op.alive(),
        "the operator exited when the API server restarted:\n{}",
        op.log_text()
    );

    support::delete_and_wait(&client, &ns, "mailpools", "mail", Duration::from_secs(60)).await;
    op.kill();
    let user = format!("client.rbox.{ns}.mail");
    support::cleanup(&client, &ns, &[&data, &index], &[&user]).await;
}
