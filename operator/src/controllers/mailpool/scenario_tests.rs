//! tower-test scenarios: the Kubernetes request sequence of a MailPool reconcile against a
//! mocked API server, with the fake monitor and the in-memory RADOS backend behind it. The
//! real API server and Ceph are exercised by `tests/ceph_e2e.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use rbox_core::backend::Backend;
use rbox_core::backend::memory::MemoryBackend;
use serde_json::json;

use super::converge;
use crate::api::{MailCluster, MailPool};
use crate::ceph::Admin;
use crate::ceph::fake::FakeMon;
use crate::controllers::Context;
use crate::runtime::metrics::Metrics;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mailpool() -> MailPool {
    serde_json::from_value(json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool",
        "metadata": {"name": "mail", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "clusterRef": {"name": "ceph"},
            "data": {"name": "mail-data", "replicated": {"size": 1, "allowSizeOne": true},
                     "failureDomain": "osd", "quota": {"maxBytes": "1Gi"}},
            "index": {"name": "mail-index", "replicated": {"size": 1, "allowSizeOne": true},
                      "failureDomain": "osd"},
        }
    }))
    .expect("mailpool fixture")
}

fn mailcluster() -> MailCluster {
    serde_json::from_value(json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": "ceph", "namespace": "ns"},
        "spec": {"ceph": {"external": {"monitors": ["127.0.0.1:6789"],
                                       "keyringSecret": {"name": "k"}}}}
    }))
    .expect("mailcluster fixture")
}

/// A tiny API server: GET returns what was applied before (or 404), PATCH stores the body.
/// Records `METHOD path` of every request.
async fn serve(
    mut handle: Handle,
    store: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    log: Arc<Mutex<Vec<String>>>,
) {
    while let Some((req, send)) = handle.next_request().await {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        log.lock().unwrap().push(format!("{method} {path}"));
        let resp = match method {
            Method::GET => match store.lock().unwrap().get(&path) {
                Some(b) => Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(b.clone())),
                None => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::from(
                        serde_json::to_vec(
                            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"}),
                        )
                        .unwrap(),
                    )),
            },
            Method::PATCH => {
                let body = req.into_body().collect_bytes().await.unwrap().to_vec();
                store.lock().unwrap().insert(path, body.clone());
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(body))
            }
            other => panic!("unexpected {other} {path}"),
        };
        send.send_response(resp.unwrap());
    }
}

type Shared<T> = Arc<Mutex<T>>;

/// A Context whose client talks to [`serve`]; what it stored and the requests it saw.
struct Mock {
    ctx: Context,
    store: Shared<HashMap<String, Vec<u8>>>,
    log: Shared<Vec<String>>,
}

fn mock() -> Mock {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ns");
    let store = Arc::new(Mutex::new(HashMap::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(serve(handle, store.clone(), log.clone()));
    Mock {
        ctx: Context::new(client, Metrics::new(), Some("ns".into())),
        store,
        log,
    }
}

#[tokio::test]
async fn first_reconcile_creates_then_an_unchanged_one_only_reads() {
    let Mock { ctx, log, .. } = mock();
    let fake = FakeMon::new();
    let admin = Admin::new(fake.clone(), Some(ctx.metrics.clone()));
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::with_pools(&["mail-data", "mail-index"]));
    let mut mp = mailpool();
    let mc = mailcluster();

    // First reconcile: pools, user, rbox_cfg, Secret and ConfigMap are created; canary passes.
    let applied = converge(
        &mp,
        &mc,
        &ctx,
        "127.0.0.1:6789",
        &admin,
        backend.clone(),
        true,
    )
    .await
    .expect("first reconcile");
    assert_eq!(
        log.lock().unwrap().clone(),
        [
            "GET /api/v1/namespaces/ns/secrets/mail-ceph-keyring",
            "PATCH /api/v1/namespaces/ns/secrets/mail-ceph-keyring",
            "GET /api/v1/namespaces/ns/configmaps/mail-ceph-conf",
            "PATCH /api/v1/namespaces/ns/configmaps/mail-ceph-conf",
        ]
    );
    assert!(
        applied.canary.as_ref().is_some_and(|c| c.ok),
        "{:?}",
        applied.canary
    );
    let first_writes = admin.writes();
    assert!(fake.prefixes().contains(&"osd pool create".to_string()));
    assert_eq!(
        fake.pool("mail-data").unwrap()["quota_max_bytes"],
        1u64 << 30
    );
    // Ceph records which MailPool created the pool (what deletion trusts, not the status).
    assert_eq!(
        fake.pool("mail-data").unwrap()["application_metadata"]["rbox"]["owner"],
        "u-1"
    );
    assert!(!applied.records[0].adopted);
    assert_eq!(
        fake.user_caps("client.rbox.ns.mail").unwrap()["osd"],
        "allow rw pool=mail-data, allow rw pool=mail-index"
    );

    // The status the first reconcile produced becomes the object's status.
    mp.status = Some(super::status::build(
        None,
        Some(1),
        &applied,
        crate::controllers::instrument::now(),
    ));
    log.lock().unwrap().clear();
    fake.clear_log();

    // Second reconcile of the unchanged object: reads only, on both sides.
    converge(&mp, &mc, &ctx, "127.0.0.1:6789", &admin, backend, false)
        .await
        .expect("second reconcile");
    assert_eq!(
        log.lock().unwrap().clone(),
        [
            "GET /api/v1/namespaces/ns/secrets/mail-ceph-keyring",
            "GET /api/v1/namespaces/ns/configmaps/mail-ceph-conf",
        ],
        "an unchanged MailPool wrote to Kubernetes"
    );
    assert_eq!(
        admin.writes(),
        first_writes,
        "an unchanged MailPool wrote to Ceph: {:?}",
        fake.prefixes()
    );
}

#[tokio::test]
async fn rotation_replaces_the_key_and_updates_only_the_secret() {
    let Mock { ctx, store, log } = mock();
    let fake = FakeMon::new();
    let admin = Admin::new(fake.clone(), None);
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::with_pools(&["mail-data", "mail-index"]));
    let mut mp = mailpool();
    let mc = mailcluster();
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend.clone(), false)
        .await
        .unwrap();
    mp.status = Some(super::status::build(
        None,
        Some(1),
        &applied,
        crate::controllers::instrument::now(),
    ));
    let old_key = fake.user_key("client.rbox.ns.mail").unwrap();

    mp.metadata.annotations = Some(
        [(
            crate::api::ROTATE_KEY_ANNOTATION.to_string(),
            "2026-01-01".to_string(),
        )]
        .into(),
    );
    log.lock().unwrap().clear();
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend, false)
        .await
        .unwrap();
    let new_key = fake.user_key("client.rbox.ns.mail").unwrap();
    assert_ne!(old_key, new_key);
    assert_eq!(applied.key_rotation.as_deref(), Some("2026-01-01"));
    assert_eq!(
        log.lock().unwrap().clone(),
        [
            "GET /api/v1/namespaces/ns/secrets/mail-ceph-keyring",
            "PATCH /api/v1/namespaces/ns/secrets/mail-ceph-keyring",
            "GET /api/v1/namespaces/ns/configmaps/mail-ceph-conf",
        ]
    );
    let secret = store.lock().unwrap()["/api/v1/namespaces/ns/secrets/mail-ceph-keyring"].clone();
    assert!(String::from_utf8_lossy(&secret).contains(&base64_of(&new_key)));
}

/// Issue 17: changes made behind the operator's back (the Dovecot cephx user deleted, a quota
/// set on a pool, `rbox_cfg` removed, the ceph.conf ConfigMap deleted) are repaired as
/// before, and now also reported: each one named, and counted by kind.
#[tokio::test]
async fn drift_is_repaired_and_reported() {
    use rbox_core::backend::ObjectLocation;

    use crate::ceph::command;
    let Mock { ctx, store, .. } = mock();
    let fake = FakeMon::new();
    let admin = Admin::new(fake.clone(), None);
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::with_pools(&["mail-data", "mail-index"]));
    let mut mp = mailpool();
    let mc = mailcluster();
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend.clone(), false)
        .await
        .unwrap();
    assert_eq!(applied.drift, [], "a first reconcile is not drift");
    mp.status = Some(super::status::build(
        None,
        Some(1),
        &applied,
        crate::controllers::instrument::now(),
    ));
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend.clone(), false)
        .await
        .unwrap();
    assert_eq!(applied.drift, [], "steady state is not drift");

    // By hand, as a new user tried it.
    admin
        .apply(&[
            command::auth_del("client.rbox.ns.mail"),
            command::pool_set_quota("mail-index", "max_bytes", 1 << 20),
        ])
        .await
        .unwrap();
    backend
        .remove(&ObjectLocation::new("mail-data", "", "rbox_cfg"))
        .await
        .unwrap();
    store
        .lock()
        .unwrap()
        .remove("/api/v1/namespaces/ns/configmaps/mail-ceph-conf");

    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend.clone(), false)
        .await
        .unwrap();
    let whats: Vec<&str> = applied.drift.iter().map(|d| d.what).collect();
    assert_eq!(
        whats,
        ["pool", "rbox_cfg", "cephx_user", "configmap"],
        "{:#?}",
        applied.drift
    );
    assert!(
        applied.drift[0].detail.contains("mail-index"),
        "{:?}",
        applied.drift[0]
    );
    assert!(
        applied.drift[0].detail.contains("set-quota"),
        "{:?}",
        applied.drift[0]
    );
    assert!(
        fake.user_key("client.rbox.ns.mail").is_some(),
        "the user is back"
    );
    assert_eq!(fake.pool("mail-index").unwrap()["quota_max_bytes"], 0);
    let text = ctx.metrics.encode();
    for what in whats {
        assert!(
            text.contains(&format!(
                r#"rbox_operator_drift_repaired_total{{controller="mailpool",what="{what}"}} 1"#
            )),
            "{text}"
        );
    }
}

/// A changed spec is the operator's own work, not drift.
#[tokio::test]
async fn a_spec_change_is_not_drift() {
    let Mock { ctx, .. } = mock();
    let fake = FakeMon::new();
    let admin = Admin::new(fake.clone(), None);
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::with_pools(&["mail-data", "mail-index"]));
    let mut mp = mailpool();
    let mc = mailcluster();
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend.clone(), false)
        .await
        .unwrap();
    mp.status = Some(super::status::build(
        None,
        Some(1),
        &applied,
        crate::controllers::instrument::now(),
    ));
    mp.spec.index.quota = Some(serde_json::from_value(json!({"maxBytes": "1Mi"})).unwrap());
    mp.metadata.generation = Some(2);
    let applied = converge(&mp, &mc, &ctx, "m", &admin, backend, false)
        .await
        .unwrap();
    assert!(applied.records[1].writes > 0, "the new quota was set");
    assert_eq!(applied.drift, []);
    assert!(!ctx.metrics.encode().contains("drift_repaired_total{"));
}

/// The repaired drift reaches the user as one Warning Event naming each difference.
#[tokio::test]
async fn drift_is_reported_as_a_warning_event() {
    use crate::controllers::fake_api::FakeApi;
    let api = FakeApi::builder().start();
    let events = crate::k8s::events::Events::new(api.client.clone(), "test");
    let drift = [
        super::Drift {
            what: "cephx_user",
            detail: "cephx user client.rbox.ns.mail was missing".into(),
        },
        super::Drift {
            what: "rbox_cfg",
            detail: "rbox_cfg was missing from pool mail-data".into(),
        },
    ];
    super::report_drift(&events, &mailpool(), &drift).await;
    let ev = api
        .wait_for("the Event", |s| s.path.ends_with("/events"))
        .await;
    assert!(ev.body.contains(r#""type":"Warning""#), "{}", ev.body);
    assert!(ev.body.contains("DriftRepaired"), "{}", ev.body);
    assert!(
        ev.body.contains("client.rbox.ns.mail was missing"),
        "{}",
        ev.body
    );
    assert!(ev.body.contains("rbox_cfg was missing"), "{}", ev.body);
}

fn base64_of(s: &str) -> String {
    // The Secret carries `key` base64-encoded; compare through k8s-openapi's own encoding.
    let v = serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).unwrap();
    v.as_str().unwrap_or_default().to_string()
}
