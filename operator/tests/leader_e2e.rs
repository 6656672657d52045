//! Two operator replicas against the real API server: exactly one holds the lease and
//! reconciles; killing it hands the lease to the other.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use support::{Operator, wait_for};

async fn leaders(ops: &[&Operator]) -> Vec<bool> {
    let mut out = Vec::new();
    for op in ops {
        out.push(op.metric("rbox_operator_leader").await == 1.0);
    }
    out
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn one_leader_and_failover() {
    let client = support::admin_client().await;
    let ns = support::unique("rbox-leader");
    support::create_namespace(&client, &ns).await;

    // A lease of this test's own, in the namespace where the chart lets the operator hold one.
    let lease_args = ["--leader-lease", ns.as_str()];
    let a = Operator::start_with(&ns, &lease_args, &[]).await;
    let b = Operator::start_with(&ns, &lease_args, &[]).await;

    // Exactly one of the two becomes leader, and the Lease names it.
    let first = wait_for(Duration::from_secs(40), "a leader", || {
        let (a, b) = (&a, &b);
        async move {
            let l = leaders(&[a, b]).await;
            (l.iter().filter(|x| **x).count() == 1).then_some(l)
        }
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), support::RELEASE_NAMESPACE);
    let lease = leases.get(&ns).await.expect("lease");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .expect("lease holder");
    let (leader, mut standby) = if first[0] { (a, b) } else { (b, a) };
    assert!(
        holder.ends_with(&leader.metrics_port.to_string()),
        "the lease holder {holder} is not the replica that reports leadership"
    );

    // The standby stays a standby while the leader lives, and runs no reconcile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(standby.metric("rbox_operator_leader").await, 0.0);
    assert_eq!(
        standby.metric("rbox_operator_reconciles_total").await,
        0.0,
        "a standby replica reconciled"
    );

    // Kill the leader (no clean lease release): the standby takes over after the lease expires.
    drop(leader);
    let took = std::time::Instant::now();
    wait_for(Duration::from_secs(60), "the standby to take over", || {
        let s = &standby;
        async move { (s.metric("rbox_operator_leader").await == 1.0).then_some(()) }
    })
    .await;
    eprintln!(
        "standby took over {:?} after the leader was killed",
        took.elapsed()
    );
    let lease = leases.get(&ns).await.expect("lease");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .expect("lease holder");
    assert!(holder.ends_with(&standby.metrics_port.to_string()));

    standby.kill();
    let _ = leases.delete(&ns, &Default::default()).await;
    support::delete_namespace(&client, &ns).await;
}
