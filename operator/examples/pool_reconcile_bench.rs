//! The operator's pool reconcile through librados `mon_command`, timed. The other half of
//! `e2e/bench/pool-reconcile.sh`, which runs the same command sequence through the `ceph` CLI
//! (how Rook does it) and prints both side by side.
//!
//!   cargo run -p rbox-operator --example pool_reconcile_bench -- CEPH_CONF REPS
//!
//! Per repetition, on a fresh pool: `create` (read state, create rule/pool, size,
//! application and its owner, quota, pg_num_min, cephx user), `steady` (read state, plan: nothing to do),
//! `adjust` (read state, change the quota). Prints one line per step: `step seconds`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rbox_core::rados::{Cluster, ConnectOptions};
use rbox_operator::ceph::pool::{DesiredPool, Observed, plan_pool};
use rbox_operator::ceph::user::{self, dovecot_caps};
use rbox_operator::ceph::{Admin, command};

fn desired(name: &str, quota: u64) -> DesiredPool {
    DesiredPool {
        quota_max_bytes: quota,
        pg_num_min: Some(8),
        owner: Some("bench".into()),
        ..DesiredPool::replicated(name, 1, "osd")
    }
}

/// One reconcile: read pools, rules and the user; plan; apply. Returns the writes sent.
async fn reconcile(admin: &Admin<Cluster>, d: &DesiredPool, entity: &str) -> anyhow::Result<usize> {
    let pools = admin.pools().await?;
    let rules = admin.crush_rules().await?;
    let current_user = admin.user(entity).await?;
    let plan = plan_pool(
        d,
        &Observed {
            pool: pools.iter().find(|p| p.name == d.name),
            rules: &rules,
            ec_profile: None,
            pool_all: None,
        },
        &BTreeMap::new(),
    )?;
    let caps = dovecot_caps(&d.name, &d.name);
    let action = user::plan_user(current_user.as_ref(), &caps, false);
    let mut cmds = plan.commands;
    cmds.extend(user::commands(&action, entity, &caps));
    admin.apply(&cmds).await?;
    Ok(cmds.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let conf = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/etc/ceph/ceph.conf".into());
    let reps: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let started = Instant::now();
    let cluster = Cluster::connect(ConnectOptions {
        conf_path: Some(conf.into()),
        connect_timeout: Duration::from_secs(20),
        ..Default::default()
    })
    .await?;
    println!("connect {:.4}", started.elapsed().as_secs_f64());
    let admin = Admin::new(cluster, None);
    for rep in 0..reps {
        let pool = format!("bench-lib-{}-{rep}", std::process::id());
        let entity = format!("client.bench-lib-{}-{rep}", std::process::id());
        let t = Instant::now();
        let n = reconcile(&admin, &desired(&pool, 1 << 30), &entity).await?;
        println!("create {:.4} {n}", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let n = reconcile(&admin, &desired(&pool, 1 << 30), &entity).await?;
        anyhow::ensure!(n == 0, "steady state sent {n} writes");
        println!("steady {:.4} {n}", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let n = reconcile(&admin, &desired(&pool, 2 << 30), &entity).await?;
        println!("adjust {:.4} {n}", t.elapsed().as_secs_f64());
        admin.run(&command::pool_delete(&pool)).await?;
        admin.run(&command::auth_del(&entity)).await?;
    }
    Ok(())
}
