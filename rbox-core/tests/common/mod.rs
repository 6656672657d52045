//! Helpers shared by the tests that run the `rbox` binary against the real micro Ceph.
#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};
use std::time::Duration;

use rbox_core::rados::{Cluster, ConnectOptions};
use serde_json::{Value, json};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the local environment; run `make test` (or `e2e/env up` and source its env file)")
    })
}

pub async fn connect() -> Cluster {
    Cluster::connect(ConnectOptions {
        conf_path: Some(env("RBOX_E2E_CEPH_CONF").into()),
        keyring: Some(env("RBOX_E2E_CEPH_KEYRING").into()),
        connect_timeout: Duration::from_secs(15),
        op_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await
    .expect("connect to the micro Ceph")
}

pub async fn mon(cluster: &Cluster, cmd: Value) {
    cluster
        .mon_command(&cmd)
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
}

pub async fn create_pool(cluster: &Cluster, name: &str) {
    mon(
        cluster,
        json!({"prefix": "osd pool create", "pool": name, "pg_num": 8}),
    )
    .await;
    mon(
        cluster,
        json!({"prefix": "osd pool application enable", "pool": name, "app": "rbox"}),
    )
    .await;
}

pub async fn delete_pool(cluster: &Cluster, name: &str) {
    let _ = cluster
        .mon_command(
            &json!({"prefix": "osd pool rm", "pool": name, "pool2": name,
            "yes_i_really_really_mean_it": true}),
        )
        .await;
}

/// Runs `rbox` with the connection and pool options of this test.
pub struct Rbox {
    pub pool: String,
    pub index_pool: String,
}

impl Rbox {
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_rbox"))
            .args([
                "-c",
                &env("RBOX_E2E_CEPH_CONF"),
                "-k",
                &env("RBOX_E2E_CEPH_KEYRING"),
            ])
            .args(["-p", &self.pool, "--index-pool", &self.index_pool])
            .args(["--connect-timeout", "15", "--op-timeout", "30"])
            .args(args)
            .output()
            .expect("run rbox");
        eprintln!(
            "rbox {args:?} -> {:?}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn code(&self, args: &[&str]) -> i32 {
        self.run(args).status.code().expect("exit code")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique suffix for this test's pools and namespaces.
pub fn tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        rbox_core::format::Guid128::generate().nsec()
    )
}

/// Runs the `rados` CLI on the given pool and namespace (what an operator would type).
pub fn rados(pool: &str, ns: &str, args: &[&str]) -> Output {
    let out = Command::new("rados")
        .args([
            "-c",
            &env("RBOX_E2E_CEPH_CONF"),
            "-k",
            &env("RBOX_E2E_CEPH_KEYRING"),
        ])
        .args([
            "--rados_osd_op_timeout",
            "30",
            "--rados_mon_op_timeout",
            "30",
        ])
        .args(["-p", pool, "-N", ns])
        .args(args)
        .output()
        .expect("run rados (ceph-common)");
    assert!(
        out.status.success(),
        "rados {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
