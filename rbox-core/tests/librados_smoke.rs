//! Smoke test of the librados wrapper against the real micro Ceph (`make test` starts it).

use std::collections::BTreeMap;
use std::time::Duration;

use rbox_core::backend::{BackendError, CmpOp, NamespaceFilter, WriteOp};
use rbox_core::rados::{Cluster, ConnectOptions, Pool};
use serde_json::json;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: this test needs the local environment; run `make test` (or `e2e/env up` and source its env file)")
    })
}

async fn connect() -> Cluster {
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

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local environment (make test)"]
async fn compound_write_binary_xattrs_omap_and_mon_command() {
    let cluster = connect().await;
    let pool_name = unique("smoke");

    // mon_command with JSON in and out.
    let reply = cluster
        .mon_command(
            &json!({"prefix": "osd pool create", "pool": pool_name, "pg_num": 1, "format": "json"}),
        )
        .await
        .expect("create pool");
    assert!(reply.status.contains("created"), "status: {}", reply.status);
    cluster
        .mon_command(
            &json!({"prefix": "osd pool application enable", "pool": pool_name, "app": "rbox"}),
        )
        .await
        .expect("application enable");
    let ls = cluster
        .mon_command(&json!({"prefix": "osd pool ls", "format": "json"}))
        .await
        .unwrap();
    let names: Vec<String> = serde_json::from_value(ls.json().unwrap()).unwrap();
    assert!(names.contains(&pool_name), "{names:?}");
    assert!(!cluster.fsid().unwrap().is_empty());

    let pool = Pool::open(&cluster, &pool_name)
        .await
        .expect("open the new pool");
    let ns = "alice_u";
    let oid = "4463a01079ba046b8622000083ecc375";
    let body = b"From: a@b\n\nhello\n".to_vec();
    // Binary values, including NUL and high bytes, must come back byte for byte.
    let xattr_g: Vec<u8> = b"4563a01079ba046b8622000083ecc375\0".to_vec();
    let xattr_bin: Vec<u8> = vec![0x00, 0xff, 0x01, 0x80, 0x00];
    let omap: BTreeMap<String, Vec<u8>> = [
        ("uid/1".to_string(), vec![1u8, 0, 0, 0]),
        ("uid/2".to_string(), vec![0xde, 0xad, 0, 0xbe, 0xef]),
    ]
    .into_iter()
    .collect();

    // One compound op: create + body + two xattrs + two omap keys.
    let op = WriteOp::new()
        .create(true)
        .write_full(body.clone())
        .set_xattr("G", xattr_g.clone())
        .set_xattr("X", xattr_bin.clone())
        .omap_set(omap.clone());
    pool.operate(ns, oid, &op).await.expect("compound write");

    let read = pool.read(ns, oid, 0, None).await.expect("read back");
    assert_eq!(read.data, body);
    assert_eq!(read.size, body.len() as u64);
    assert_eq!(read.xattrs.get("G"), Some(&xattr_g));
    assert_eq!(read.xattrs.get("X"), Some(&xattr_bin));
    let page = pool.omap_get_vals(ns, oid, "", "uid/", 10).await.unwrap();
    assert_eq!(page.entries, omap);
    assert!(!page.more);
    let page = pool.omap_get_vals(ns, oid, "", "uid/", 1).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert!(page.more);

    // The object lives only in its namespace.
    let err = pool.read("", oid, 0, None).await.unwrap_err();
    assert!(matches!(err, BackendError::NotFound(_)), "{err:?}");
    let listed = pool.list(&NamespaceFilter::All).await.unwrap();
    assert!(
        listed.iter().any(|o| o.namespace == ns && o.oid == oid),
        "{listed:?}"
    );

    // Exclusive create of an existing object fails and writes nothing.
    let err = pool
        .operate(
            ns,
            oid,
            &WriteOp::new().create(true).set_xattr("Y", b"y".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Exists(_)), "{err:?}");
    assert!(!pool.get_xattrs(ns, oid).await.unwrap().contains_key("Y"));

    // A failed omap compare cancels the whole op.
    let guarded = WriteOp::new()
        .omap_cmp("uid/1", CmpOp::Eq, vec![9u8])
        .set_xattr("Z", b"z".to_vec());
    let err = pool.operate(ns, oid, &guarded).await.unwrap_err();
    assert!(matches!(err, BackendError::Canceled(_)), "{err:?}");
    assert!(!pool.get_xattrs(ns, oid).await.unwrap().contains_key("Z"));

    // A large body comes back whole (more than the first read's buffer).
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    pool.operate(ns, "big", &WriteOp::new().write_full(big.clone()))
        .await
        .unwrap();
    assert_eq!(pool.read(ns, "big", 0, None).await.unwrap().data, big);

    pool.remove(ns, oid).await.unwrap();
    assert!(matches!(
        pool.stat(ns, oid).await.unwrap_err(),
        BackendError::NotFound(_)
    ));

    drop(pool);
    cluster
        .mon_command(
            &json!({"prefix": "osd pool rm", "pool": pool_name, "pool2": pool_name,
            "yes_i_really_really_mean_it": true}),
        )
        .await
        .expect("delete pool");
    let ls = cluster
        .mon_command(&json!({"prefix": "osd pool ls", "format": "json"}))
        .await
        .unwrap();
    let names: Vec<String> = serde_json::from_value(ls.json().unwrap()).unwrap();
    assert!(!names.contains(&pool_name));
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn unreachable_monitor_fails_fast_with_a_timeout() {
    let started = std::time::Instant::now();
    let err = Cluster::connect(ConnectOptions {
        mon_host: Some("[v2:127.0.0.1:9,v1:127.0.0.1:10]".into()),
        keyring: Some(env("RBOX_E2E_CEPH_KEYRING").into()),
        connect_timeout: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, BackendError::Timeout(_) | BackendError::Connection(_)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
