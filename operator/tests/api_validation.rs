//! The API against the real API server of the local environment: the CRDs install and become
//! Established, every example is accepted (server-side apply), bad input is rejected with a
//! message that names the field and says what is allowed, immutable fields stay immutable, and
//! `kubectl explain` prints the descriptions.
//!
//! Each test works in its own namespace. The CRDs are cluster-wide and shared with the other
//! tests, so they are applied (idempotently, forced) but never deleted.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use rbox_operator::api;
use serde_json::{Value, json};

const MANAGER: &str = "rbox-e2e-api";

/// Apply the CRDs generated from the types and wait until all are Established.
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in api::crd::all() {
        let name = crd.metadata.name.clone().expect("crd name");
        crds.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
    }
    for crd in api::crd::all() {
        let name = crd.metadata.name.clone().expect("crd name");
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within 30 s"))
        .expect("watch CRD");
    }
}

fn resource(kind: &str) -> ApiResource {
    let (group, version) = match kind {
        "MailCluster" | "MailPool" | "DovecotFleet" => (api::GROUP, api::VERSION),
        other => panic!("no ApiResource for {other}"),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn dynamic(client: &Client, ns: &str, ar: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, ar)
}

/// Server-side apply one object (a JSON document with apiVersion/kind/metadata.name).
async fn apply(client: &Client, ns: &str, obj: &Value) -> Result<DynamicObject, kube::Error> {
    let kind = obj["kind"].as_str().expect("kind");
    let name = obj["metadata"]["name"].as_str().expect("name");
    let ar = resource(kind);
    dynamic(client, ns, &ar)
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
}

/// The API server's message of a rejected request (panics on anything but a rejection).
fn rejection(result: Result<DynamicObject, kube::Error>, what: &str) -> String {
    match result {
        Ok(obj) => panic!(
            "{what}: the API server accepted it:\n{}",
            serde_json::to_string_pretty(&obj.data).unwrap_or_default()
        ),
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                status.code, 422,
                "{what}: expected 422 Invalid, got {status:?}"
            );
            status.message
        }
        Err(e) => panic!("{what}: expected a rejection by the API server, got {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Valid base objects. Each invalid case starts from one of these and breaks one thing.

fn cluster(name: &str) -> Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailCluster",
        "metadata": {"name": name},
        "spec": {"ceph": {"external": {
            "monitors": ["[v2:10.0.0.1:3300,v1:10.0.0.1:6789]"],
            "keyringSecret": {"name": "ceph-admin"}
        }}}
    })
}

fn pool(name: &str) -> Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "MailPool",
        "metadata": {"name": name},
        "spec": {
            "clusterRef": {"name": "c"},
            "data": {"name": format!("{name}-data"), "erasureCoded": {"k": 4, "m": 2}, "deviceClass": "hdd"},
            "index": {"name": format!("{name}-index"), "replicated": {"size": 3, "minSize": 2}, "deviceClass": "ssd"}
        }
    })
}

fn fleet(name: &str) -> Value {
    json!({
        "apiVersion": "mail.rbox.io/v1alpha1", "kind": "DovecotFleet",
        "metadata": {"name": name},
        "spec": {
            "poolRef": {"name": "p"},
            "image": "registry.example/dovecot-rbox:2.3",
            "replicas": 3,
            "auth": {"passwdFile": {"secretName": "users"}},
            "indexStorage": {"persistentVolumeClaim": {"claimName": "dovecot-index"}}
        }
    })
}

/// Set `value` at a `/`-separated path below the object (creating objects on the way);
/// `Value::Null` removes the key.
fn set(obj: &mut Value, path: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        if cur.get(*p).is_none() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    let last = parts[parts.len() - 1];
    if value.is_null() {
        if let Some(map) = cur.as_object_mut() {
            map.remove(last);
        }
    } else {
        cur[last] = value;
    }
}

/// One invalid manifest: a base object with `changes` applied, and the words the API server's
/// message must contain (the field path first, then what is allowed).
struct Case {
    name: &'static str,
    base: fn(&str) -> Value,
    changes: Vec<(&'static str, Value)>,
    expect: Vec<&'static str>,
}

fn case(
    name: &'static str,
    base: fn(&str) -> Value,
    changes: Vec<(&'static str, Value)>,
    expect: Vec<&'static str>,
) -> Case {
    Case {
        name,
        base,
        changes,
        expect,
    }
}

fn invalid_cases() -> Vec<Case> {
    vec![
        // ---- MailCluster
        case(
            "ceph: external and rook together",
            cluster,
            vec![("spec/ceph/rook", json!({"cephClusterName": "rook-ceph"}))],
            vec![
                "spec.ceph",
                "set exactly one of ceph.external",
                "or ceph.rook",
            ],
        ),
        case(
            "ceph: neither external nor rook",
            cluster,
            vec![("spec/ceph/external", Value::Null)],
            vec!["spec.ceph", "set exactly one of ceph.external"],
        ),
        case(
            "external: empty monitor list",
            cluster,
            vec![("spec/ceph/external/monitors", json!([]))],
            vec![
                "spec.ceph.external.monitors",
                "should have at least 1 items",
            ],
        ),
        case(
            "external: neither monitors nor monitorsSecretKey",
            cluster,
            vec![("spec/ceph/external/monitors", Value::Null)],
            vec![
                "spec.ceph.external",
                "set exactly one of external.monitors",
                "external.monitorsSecretKey",
            ],
        ),
        case(
            "external: monitors and monitorsSecretKey together",
            cluster,
            vec![("spec/ceph/external/monitorsSecretKey", json!("mon_host"))],
            vec!["spec.ceph.external", "set exactly one of external.monitors"],
        ),
        case(
            "external: monitor address with a space",
            cluster,
            vec![("spec/ceph/external/monitors", json!(["10.0.0.1 6789"]))],
            vec!["spec.ceph.external.monitors[0]", "should match '^\\S+$'"],
        ),
        case(
            "external: user without the client. prefix",
            cluster,
            vec![("spec/ceph/external/user", json!("admin.rbox-operator"))],
            vec!["spec.ceph.external.user", "should match '^client\\."],
        ),
        case(
            "external: keyring Secret name not a Kubernetes name",
            cluster,
            vec![("spec/ceph/external/keyringSecret/name", json!("Ceph_Admin"))],
            vec!["spec.ceph.external.keyringSecret.name", "should match"],
        ),
        case(
            "rook: namespace not a Kubernetes name",
            cluster,
            vec![
                ("spec/ceph/external", Value::Null),
                (
                    "spec/ceph/rook",
                    json!({"cephClusterName": "rook-ceph", "namespace": "Rook_Ceph"}),
                ),
            ],
            vec!["spec.ceph.rook.namespace", "should match"],
        ),
        case(
            "timeouts: connectSeconds 0",
            cluster,
            vec![("spec/ceph/timeouts/connectSeconds", json!(0))],
            vec![
                "spec.ceph.timeouts.connectSeconds",
                "should be greater than or equal to 1",
            ],
        ),
        case(
            "rbox: mailAttributes without M and G",
            cluster,
            vec![("spec/rbox/mailAttributes", json!("PORZ"))],
            vec![
                "spec.rbox.mailAttributes",
                "must contain M (mailbox GUID) and G",
            ],
        ),
        case(
            "rbox: mailAttributes with a letter twice",
            cluster,
            vec![("spec/rbox/mailAttributes", json!("MGPP"))],
            vec!["spec.rbox.mailAttributes", "each letter at most once"],
        ),
        case(
            "rbox: mailAttributes with an unknown letter",
            cluster,
            vec![("spec/rbox/mailAttributes", json!("MGX"))],
            vec![
                "spec.rbox.mailAttributes",
                "should match '^[MGPORZVBUIACFKS]+$'",
            ],
        ),
        case(
            "rbox: updateableAttributes with a letter twice",
            cluster,
            vec![("spec/rbox/updateableAttributes", json!("BB"))],
            vec!["spec.rbox.updateableAttributes", "each letter at most once"],
        ),
        case(
            "rbox: unknown metadataStorage",
            cluster,
            vec![("spec/rbox/metadataStorage", json!("json"))],
            vec![
                "spec.rbox.metadataStorage",
                "supported values: \"default\", \"ima\"",
            ],
        ),
        case(
            "rbox: metadataAttribute is a metadata letter",
            cluster,
            vec![("spec/rbox/metadataAttribute", json!("B"))],
            vec![
                "spec.rbox.metadataAttribute",
                "must not be a single metadata letter",
            ],
        ),
        case(
            "rbox: user mapping with userNamespace == publicNamespace",
            cluster,
            vec![
                ("spec/rbox/userMapping", json!(true)),
                ("spec/rbox/userNamespace", json!("shared")),
                ("spec/rbox/publicNamespace", json!("shared")),
            ],
            vec![
                "spec.rbox.publicNamespace",
                "must differ from rbox.userNamespace",
            ],
        ),
        case(
            "health: canary timeout longer than the interval",
            cluster,
            vec![
                ("spec/health/canaryIntervalSeconds", json!(60)),
                ("spec/health/canaryTimeoutSeconds", json!(120)),
            ],
            vec![
                "spec.health.canaryTimeoutSeconds",
                "must not exceed health.canaryIntervalSeconds",
            ],
        ),
        case(
            "health: canary interval below 10 s",
            cluster,
            vec![("spec/health/canaryIntervalSeconds", json!(5))],
            vec![
                "spec.health.canaryIntervalSeconds",
                "should be greater than or equal to 10",
            ],
        ),
        // ---- MailPool
        case(
            "index pool erasure-coded",
            pool,
            vec![
                ("spec/index/replicated", Value::Null),
                ("spec/index/erasureCoded", json!({"k": 4, "m": 2})),
            ],
            vec![
                "spec.index.erasureCoded",
                "the index pool must be replicated: omap (the mail index) does not exist on erasure-coded pools",
            ],
        ),
        case(
            "data and index pool with the same name",
            pool,
            vec![
                ("spec/index/name", json!("same")),
                ("spec/data/name", json!("same")),
            ],
            vec!["spec.index.name", "must differ from data.name"],
        ),
        case(
            "data pool both replicated and erasure-coded",
            pool,
            vec![("spec/data/replicated", json!({"size": 3}))],
            vec!["spec.data", "set exactly one of replicated or erasureCoded"],
        ),
        case(
            "data pool neither replicated nor erasure-coded",
            pool,
            vec![("spec/data/erasureCoded", Value::Null)],
            vec!["spec.data", "set exactly one of replicated or erasureCoded"],
        ),
        case(
            "replicated: minSize above size",
            pool,
            vec![("spec/index/replicated", json!({"size": 2, "minSize": 3}))],
            vec![
                "spec.index.replicated.minSize",
                "must not exceed replicated.size",
            ],
        ),
        case(
            "replicated: size 1 without allowSizeOne",
            pool,
            vec![("spec/index/replicated", json!({"size": 1}))],
            vec![
                "spec.index.replicated.size",
                "set replicated.allowSizeOne: true",
            ],
        ),
        case(
            "replicated: size 11",
            pool,
            vec![("spec/index/replicated/size", json!(11))],
            vec![
                "spec.index.replicated.size",
                "should be less than or equal to 10",
            ],
        ),
        case(
            "erasure coding: k 1",
            pool,
            vec![("spec/data/erasureCoded/k", json!(1))],
            vec![
                "spec.data.erasureCoded.k",
                "should be greater than or equal to 2",
            ],
        ),
        case(
            "erasure coding: m 0",
            pool,
            vec![("spec/data/erasureCoded/m", json!(0))],
            vec![
                "spec.data.erasureCoded.m",
                "should be greater than or equal to 1",
            ],
        ),
        case(
            "pool name starting with a dot (Ceph's own pools)",
            pool,
            vec![("spec/data/name", json!(".mgr"))],
            vec![
                "spec.data.name",
                "should match '^[A-Za-z0-9][A-Za-z0-9_.-]*$'",
            ],
        ),
        case(
            "pool name with a space",
            pool,
            vec![("spec/index/name", json!("mail index"))],
            vec!["spec.index.name", "should match"],
        ),
        case(
            "unknown failure domain",
            pool,
            vec![("spec/data/failureDomain", json!("server"))],
            vec![
                "spec.data.failureDomain",
                "supported values: \"osd\", \"host\"",
            ],
        ),
        case(
            "unknown compression mode",
            pool,
            vec![("spec/data/compression", json!({"mode": "always"}))],
            vec![
                "spec.data.compression.mode",
                "supported values: \"none\", \"passive\", \"aggressive\", \"force\"",
            ],
        ),
        case(
            "negative byte quota",
            pool,
            vec![("spec/data/quota", json!({"maxBytes": "-1Gi"}))],
            vec![
                "spec.data.quota.maxBytes",
                "must be a non-negative quantity such as 500Gi",
            ],
        ),
        case(
            "byte quota that is not a quantity",
            pool,
            vec![("spec/data/quota", json!({"maxBytes": "lots"}))],
            vec!["spec.data.quota.maxBytes", "non-negative quantity"],
        ),
        case(
            "negative object quota",
            pool,
            vec![("spec/index/quota", json!({"maxObjects": -5}))],
            vec![
                "spec.index.quota.maxObjects",
                "should be greater than or equal to 0",
            ],
        ),
        case(
            "negative targetSizeRatio",
            pool,
            vec![("spec/data/targetSizeRatio", json!(-0.5))],
            vec![
                "spec.data.targetSizeRatio",
                "should be greater than or equal to 0",
            ],
        ),
        case(
            "unknown reclaimPolicy",
            pool,
            vec![("spec/reclaimPolicy", json!("Destroy"))],
            vec![
                "spec.reclaimPolicy",
                "supported values: \"Retain\", \"Delete\"",
            ],
        ),
        case(
            "parameters overriding a typed field",
            pool,
            vec![("spec/data/parameters", json!({"min_size": "1"}))],
            vec![
                "spec.data.parameters",
                "must not set size, min_size",
                "use the typed fields",
            ],
        ),
        case(
            "parameters with a malformed key",
            pool,
            vec![("spec/data/parameters", json!({"Bad-Key": "1"}))],
            vec!["spec.data.parameters", "keys must be Ceph pool properties"],
        ),
        case(
            "dovecotUser client.admin",
            pool,
            vec![("spec/dovecotUser", json!("client.admin"))],
            vec!["spec.dovecotUser", "must not be client.admin"],
        ),
        case(
            "dovecotUser without the client. prefix",
            pool,
            vec![("spec/dovecotUser", json!("dovecot-eu1"))],
            vec!["spec.dovecotUser", "should match '^client\\."],
        ),
        case(
            "clusterRef missing",
            pool,
            vec![("spec/clusterRef", Value::Null)],
            vec!["spec.clusterRef", "Required value"],
        ),
        // ---- DovecotFleet
        case(
            "emptyDir index with 3 replicas, not acknowledged",
            fleet,
            vec![("spec/indexStorage", json!({"emptyDir": {}}))],
            vec![
                "spec.indexStorage.emptyDir",
                "use indexStorage.persistentVolumeClaim",
                "acknowledgeEphemeralIndex: true",
            ],
        ),
        case(
            "index storage with both a claim and emptyDir",
            fleet,
            vec![("spec/indexStorage/emptyDir", json!({}))],
            vec![
                "spec.indexStorage",
                "set exactly one of persistentVolumeClaim or emptyDir",
            ],
        ),
        case(
            "index storage empty",
            fleet,
            vec![("spec/indexStorage", json!({}))],
            vec![
                "spec.indexStorage",
                "set exactly one of persistentVolumeClaim or emptyDir",
            ],
        ),
        case(
            "emptyDir sizeLimit 0",
            fleet,
            vec![
                ("spec/replicas", json!(1)),
                ("spec/indexStorage", json!({"emptyDir": {"sizeLimit": "0"}})),
            ],
            vec![
                "spec.indexStorage.emptyDir.sizeLimit",
                "must be a positive quantity",
            ],
        ),
        case(
            "no auth source",
            fleet,
            vec![("spec/auth", json!({}))],
            vec!["spec.auth", "set exactly one of passwdFile, ldap or sql"],
        ),
        case(
            "two auth sources",
            fleet,
            vec![("spec/auth/ldap", json!({"secretName": "ldap"}))],
            vec!["spec.auth", "set exactly one of passwdFile, ldap or sql"],
        ),
        case(
            "negative replicas",
            fleet,
            vec![("spec/replicas", json!(-1))],
            vec!["spec.replicas", "should be greater than or equal to 0"],
        ),
        case(
            "every protocol disabled",
            fleet,
            vec![(
                "spec/protocols",
                json!({"imap": {"enabled": false}, "lmtp": {"enabled": false}}),
            )],
            vec!["spec.protocols", "enable at least one of imap, pop3, lmtp"],
        ),
        case(
            "two protocols on one port",
            fleet,
            vec![(
                "spec/protocols",
                json!({"pop3": {"enabled": true, "port": 143}}),
            )],
            vec!["spec.protocols", "two enabled protocols use the same port"],
        ),
        case(
            "port above 65535",
            fleet,
            vec![("spec/protocols", json!({"imap": {"port": 70000}}))],
            vec![
                "spec.protocols.imap.port",
                "should be less than or equal to 65535",
            ],
        ),
        case(
            "empty image",
            fleet,
            vec![("spec/image", json!(""))],
            vec!["spec.image", "should be at least 1 chars long"],
        ),
        case(
            "mail uid 0 (root)",
            fleet,
            vec![("spec/mailUser", json!({"uid": 0}))],
            vec!["spec.mailUser.uid", "should be greater than or equal to 1"],
        ),
        case(
            "unknown imagePullPolicy",
            fleet,
            vec![("spec/imagePullPolicy", json!("Sometimes"))],
            vec![
                "spec.imagePullPolicy",
                "supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            ],
        ),
        case(
            "unknown Service type",
            fleet,
            vec![("spec/service", json!({"type": "ExternalName"}))],
            vec![
                "spec.service.type",
                "supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\"",
            ],
        ),
        case(
            "grace period above an hour",
            fleet,
            vec![("spec/terminationGracePeriodSeconds", json!(7200))],
            vec![
                "spec.terminationGracePeriodSeconds",
                "should be less than or equal to 3600",
            ],
        ),
        case(
            "DovecotFleet name too long for its StatefulSet and Services",
            |_| fleet(&"f".repeat(53)),
            vec![],
            vec![
                "metadata.name",
                "must be a DNS label of at most 52 characters",
            ],
        ),
        case(
            "DovecotFleet name with a dot (Services need a DNS label)",
            |_| fleet("imap.eu1"),
            vec![],
            vec![
                "metadata.name",
                "must be a DNS label of at most 52 characters",
            ],
        ),
        case(
            "poolRef name not a Kubernetes name",
            fleet,
            vec![("spec/poolRef/name", json!("Mail_Pool"))],
            vec!["spec.poolRef.name", "should match"],
        ),
    ]
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn invalid_manifests_are_rejected_with_a_clear_message() {
    let client = support::admin_client().await;
    install_crds(&client).await;
    let ns = support::unique("api-invalid");
    support::create_namespace(&client, &ns).await;

    let cases = invalid_cases();
    assert!(cases.len() >= 30, "only {} invalid cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let mut obj = (c.base)(&format!("bad-{i}"));
        for (path, value) in &c.changes {
            set(&mut obj, path, value.clone());
        }
        let message = match apply(&client, &ns, &obj).await {
            Ok(_) => {
                failures.push(format!("[{}] was accepted", c.name));
                continue;
            }
            Err(e) => rejection(Err(e), c.name),
        };
        for want in &c.expect {
            if !message.contains(want) {
                failures.push(format!(
                    "[{}] message lacks {want:?}:\n    {message}",
                    c.name
                ));
            }
        }
    }
    support::delete_namespace(&client, &ns).await;
    assert!(
        failures.is_empty(),
        "{} of {} invalid manifests misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} invalid manifests rejected with the expected message",
        cases.len()
    );
}

/// An update that changes an immutable field: create `base`, then merge-patch `patch`.
struct Update {
    name: String,
    base: fn(&str) -> Value,
    patch: Value,
    expect: Vec<String>,
}

fn immutable_cases() -> Vec<Update> {
    let u = |name: &str, base, patch, expect: Vec<&str>| Update {
        name: name.to_string(),
        base,
        patch,
        expect: expect.into_iter().map(String::from).collect(),
    };
    // The rbox layout of a MailCluster: every field that decides where mail lives.
    let rbox = [
        ("userMapping", json!(true)),
        ("userNamespace", json!("accounts")),
        ("userSuffix", json!("_x")),
        ("publicNamespace", json!("shared")),
        ("metadataStorage", json!("ima")),
        ("metadataAttribute", json!("meta")),
        ("cfgObjectName", json!("rbox_cfg2")),
    ]
    .into_iter()
    .map(|(field, value)| Update {
        name: format!("MailCluster rbox.{field}"),
        base: cluster,
        patch: json!({"spec": {"rbox": {field: value}}}),
        expect: vec![
            format!("spec.rbox.{field}"),
            format!("{field} is immutable"),
        ],
    });
    let mut cases = vec![
        u(
            "MailPool clusterRef",
            pool as fn(&str) -> Value,
            json!({"spec": {"clusterRef": {"name": "other"}}}),
            vec!["spec.clusterRef", "clusterRef is immutable"],
        ),
        u(
            "MailPool data pool name",
            pool,
            json!({"spec": {"data": {"name": "renamed-data"}}}),
            vec!["spec.data.name", "pool name is immutable"],
        ),
        u(
            "MailPool index pool name",
            pool,
            json!({"spec": {"index": {"name": "renamed-index"}}}),
            vec!["spec.index.name", "pool name is immutable"],
        ),
        u(
            "MailPool data pool from erasure-coded to replicated",
            pool,
            json!({"spec": {"data": {"erasureCoded": null, "replicated": {"size": 3}}}}),
            vec![
                "spec.data",
                "cannot switch between replicated and erasureCoded",
            ],
        ),
        u(
            "MailPool erasure-code k",
            pool,
            json!({"spec": {"data": {"erasureCoded": {"k": 6}}}}),
            vec!["spec.data.erasureCoded", "erasureCoded is immutable"],
        ),
        u(
            "MailPool deviceClass changed",
            pool,
            json!({"spec": {"data": {"deviceClass": "ssd"}}}),
            vec!["spec.data.deviceClass", "deviceClass is immutable"],
        ),
        u(
            "MailPool deviceClass removed",
            pool,
            json!({"spec": {"index": {"deviceClass": null}}}),
            vec!["spec.index.deviceClass", "deviceClass is immutable"],
        ),
        u(
            "MailPool failureDomain",
            pool,
            json!({"spec": {"data": {"failureDomain": "rack"}}}),
            vec!["spec.data.failureDomain", "failureDomain is immutable"],
        ),
        u(
            "MailPool crushRoot",
            pool,
            json!({"spec": {"index": {"crushRoot": "ssd-root"}}}),
            vec!["spec.index.crushRoot", "crushRoot is immutable"],
        ),
        u(
            "DovecotFleet poolRef",
            fleet,
            json!({"spec": {"poolRef": {"name": "other"}}}),
            vec!["spec.poolRef", "poolRef is immutable"],
        ),
        u(
            "DovecotFleet with emptyDir scaled to 3 without acknowledgement",
            |name| {
                let mut f = fleet(name);
                set(&mut f, "spec/replicas", json!(1));
                set(&mut f, "spec/indexStorage", json!({"emptyDir": {}}));
                f
            },
            json!({"spec": {"replicas": 3}}),
            vec![
                "spec.indexStorage.emptyDir",
                "acknowledgeEphemeralIndex: true",
            ],
        ),
    ];
    cases.extend(rbox);
    cases
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn immutable_fields_reject_changes_and_mutable_ones_accept_them() {
    let client = support::admin_client().await;
    install_crds(&client).await;
    let ns = support::unique("api-immutable");
    support::create_namespace(&client, &ns).await;

    let mut failures = Vec::new();
    let cases = immutable_cases();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("upd-{i}");
        let obj = (c.base)(&name);
        apply(&client, &ns, &obj)
            .await
            .unwrap_or_else(|e| panic!("[{}] create the valid object: {e}", c.name));
        let kind = obj["kind"].as_str().expect("kind");
        let result = dynamic(&client, &ns, &resource(kind))
            .patch(&name, &PatchParams::default(), &Patch::Merge(&c.patch))
            .await;
        let message = match result {
            Ok(_) => {
                failures.push(format!("[{}] the change was accepted", c.name));
                continue;
            }
            Err(e) => rejection(Err(e), &c.name),
        };
        for want in &c.expect {
            if !message.contains(want.as_str()) {
                failures.push(format!(
                    "[{}] message lacks {want:?}:\n    {message}",
                    c.name
                ));
            }
        }
    }

    // The rules must not over-reach: changes the operator can apply are accepted.
    let mut p = pool("mutable");
    set(&mut p, "spec/index/replicated", json!({"size": 3}));
    apply(&client, &ns, &p).await.expect("create mutable pool");
    let pools = dynamic(&client, &ns, &resource("MailPool"));
    let ok_patch = json!({"spec": {
        "reclaimPolicy": "Delete",
        "dovecotUser": "client.mail-test",
        "index": {"replicated": {"size": 2, "minSize": 1}, "quota": {"maxObjects": 1000}, "pgNumMin": 16},
        "data": {"quota": {"maxBytes": "10Ti"}, "compression": {"mode": "aggressive", "algorithm": "zstd"},
                 "targetSizeRatio": 0.5, "bulk": true, "parameters": {"pg_autoscale_mode": "warn"}}
    }});
    if let Err(e) = pools
        .patch("mutable", &PatchParams::default(), &Patch::Merge(&ok_patch))
        .await
    {
        failures.push(format!("mutable MailPool fields were refused: {e}"));
    }
    let mut f = fleet("mutable");
    set(&mut f, "spec/replicas", json!(1));
    set(&mut f, "spec/indexStorage", json!({"emptyDir": {}}));
    apply(&client, &ns, &f).await.expect("create mutable fleet");
    let fleets = dynamic(&client, &ns, &resource("DovecotFleet"));
    // `kubectl scale` (the scale subresource) cannot bypass the emptyDir rule either.
    let scale = json!({"spec": {"replicas": 3}});
    match fleets
        .patch_scale("mutable", &PatchParams::default(), &Patch::Merge(&scale))
        .await
    {
        Ok(_) => failures.push("scaling an unacknowledged emptyDir fleet to 3 was accepted".into()),
        Err(kube::Error::Api(s)) if s.message.contains("acknowledgeEphemeralIndex: true") => {}
        Err(e) => failures.push(format!("scale to 3 refused with an unclear error: {e}")),
    }
    let scale_ok = json!({"spec": {"replicas": 4, "acknowledgeEphemeralIndex": true, "image": "registry.example/dovecot-rbox:2.3.22"}});
    if let Err(e) = fleets
        .patch("mutable", &PatchParams::default(), &Patch::Merge(&scale_ok))
        .await
    {
        failures.push(format!(
            "an acknowledged emptyDir fleet could not scale to 4: {e}"
        ));
    }

    // Defaults never trip a rule: only the smallest canary interval, timeout left default.
    let mut c = cluster("fast-canary");
    set(&mut c, "spec/health", json!({"canaryIntervalSeconds": 10}));
    if let Err(e) = apply(&client, &ns, &c).await {
        failures.push(format!(
            "a MailCluster with canaryIntervalSeconds 10 was refused: {e}"
        ));
    }

    support::delete_namespace(&client, &ns).await;
    assert!(
        failures.is_empty(),
        "{} of {} immutability checks misbehaved:\n{}",
        failures.len(),
        cases.len() + 4,
        failures.join("\n")
    );
    eprintln!(
        "{} immutable changes and 1 scale rejected, 3 valid changes accepted",
        cases.len()
    );
}

/// Every YAML file below `examples/` except the Kustomization, recursively.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&support::repo_root().join("examples"), &mut out);
    out
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn crds_are_established_and_every_example_is_accepted() {
    let client = support::admin_client().await;
    install_crds(&client).await;
    let ns = support::unique("api-examples");
    support::create_namespace(&client, &ns).await;

    let files = example_files();
    assert!(files.len() >= 2, "examples/ holds {} files", files.len());
    let mut applied = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for file in &files {
        for doc in support::yaml_documents(file) {
            let api_version = doc["apiVersion"].as_str().expect("apiVersion").to_string();
            let kind = doc["kind"].as_str().expect("kind").to_string();
            let name = doc["metadata"]["name"].as_str().expect("name").to_string();
            let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
            let gvk = GroupVersionKind::gvk(group, version, &kind);
            let (ar, _caps) = kube::discovery::pinned_kind(&client, &gvk)
                .await
                .unwrap_or_else(|e| panic!("discover {api_version} {kind}: {e}"));
            let created = dynamic(&client, &ns, &ar)
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&doc),
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {kind} {name} rejected: {e}", file.display()));
            if group == api::GROUP {
                // Defaults from the schema are visible on the stored object.
                let spec = &created.data["spec"];
                match kind.as_str() {
                    "MailCluster" => {
                        assert_eq!(spec["ceph"]["clusterName"], "ceph", "{name}");
                        assert!(spec["rbox"]["cfgObjectName"].is_string(), "{name}");
                        assert!(
                            spec["health"]["canaryIntervalSeconds"].is_number(),
                            "{name}"
                        );
                    }
                    "MailPool" => {
                        assert!(spec["data"]["failureDomain"].is_string(), "{name}");
                        assert!(spec["index"]["crushRoot"].is_string(), "{name}");
                        assert!(spec["reclaimPolicy"].is_string(), "{name}");
                    }
                    "DovecotFleet" => {
                        assert!(spec["protocols"]["imap"]["port"].is_number(), "{name}");
                        assert!(spec["mailUser"]["uid"].is_number(), "{name}");
                        assert!(spec["terminationGracePeriodSeconds"].is_number(), "{name}");
                    }
                    other => panic!("unexpected kind {other}"),
                }
                kinds.insert(kind.clone());
            }
            applied += 1;
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["DovecotFleet", "MailCluster", "MailPool"],
        "examples cover every kind"
    );

    // `kubectl get` through the short names shows the printer columns.
    let out = support::run(&mut support::kubectl(&[
        "get",
        "mcl,mpool,dfleet",
        "-n",
        &ns,
    ]));
    for col in [
        "PHASE",
        "HEALTH",
        "CLUSTER",
        "DATA",
        "INDEX",
        "POOL",
        "DESIRED",
        "AVAILABLE",
    ] {
        assert!(out.contains(col), "column {col} missing from:\n{out}");
    }
    support::delete_namespace(&client, &ns).await;
    eprintln!(
        "{applied} example objects from {} files accepted",
        files.len()
    );
}

#[tokio::test]
#[ignore = "needs the local environment (make test)"]
async fn kubectl_explain_prints_the_descriptions() {
    let client = support::admin_client().await;
    install_crds(&client).await;
    // Field path → words of its description (from the Rust doc comments).
    let cases = [
        ("mailpool.spec.index", "The pool for the omap mail index"),
        (
            "mailpool.spec.index.replicated.allowSizeOne",
            "Permit `size: 1`",
        ),
        ("mailpool.spec.reclaimPolicy", "mail.rbox.io/confirm-delete"),
        (
            "mailcluster.spec.ceph.external.monitors",
            "Monitor addresses",
        ),
        ("mailcluster.spec.rbox.userMapping", "user_mapping"),
        (
            "dovecotfleet.spec.indexStorage.emptyDir",
            "A per-pod scratch volume",
        ),
        (
            "dovecotfleet.spec.acknowledgeEphemeralIndex",
            "Accept `indexStorage.emptyDir`",
        ),
        ("mpool.status.lastCanary", "The last canary"),
    ];
    // Discovery of a freshly installed CRD can lag a moment behind Established.
    for (path, words) in cases {
        let out = support::wait_for(Duration::from_secs(30), path, || async move {
            let out = support::kubectl(&["explain", path]).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .await;
        // kubectl wraps long lines: compare with whitespace collapsed.
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(words),
            "`kubectl explain {path}` lacks {words:?}:\n{out}"
        );
    }
}

/// Every CEL rule of the schema is exercised by a case above: a case whose field path (its
/// first expected text) is the rule's path and whose other expected texts are part of the
/// rule's message; the tests above check those texts against the real API server. The data
/// and index pools share one type, so a rule of either counts for both. Needs no environment.
#[test]
fn every_cel_rule_is_exercised_by_a_case() {
    fn collect(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
        if let Some(Value::Array(rules)) = v.get("x-kubernetes-validations") {
            for r in rules {
                let field = r["fieldPath"].as_str().unwrap_or_default();
                // The only rules on the root are about metadata.name (fieldPath cannot
                // point into metadata).
                let at = match format!("{path}{field}").trim_start_matches('.') {
                    "" => "metadata.name".to_string(),
                    p => p.to_string(),
                };
                out.push((at, r["message"].as_str().unwrap_or_default().to_string()));
            }
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(&p, child, out);
            }
        }
    }
    fn normalize(path: &str) -> String {
        for pool in ["spec.data", "spec.index"] {
            if let Some(rest) = path.strip_prefix(pool)
                && (rest.is_empty() || rest.starts_with('.'))
            {
                return format!("spec.<pool>{rest}");
            }
        }
        path.to_string()
    }
    let mut rules = Vec::new();
    for crd in api::crd::all() {
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap(),
        )
        .unwrap();
        let mut found = Vec::new();
        collect("", &schema, &mut found);
        rules.extend(
            found
                .into_iter()
                .map(|(p, m)| (crd.spec.names.kind.clone(), normalize(&p), m)),
        );
    }
    rules.sort();
    rules.dedup();
    let kind_of = |base: fn(&str) -> Value| (base)("x")["kind"].as_str().unwrap().to_string();
    let cases: Vec<(String, Vec<String>)> = invalid_cases()
        .iter()
        .map(|c| {
            (
                kind_of(c.base),
                c.expect.iter().map(|e| e.to_string()).collect(),
            )
        })
        .chain(
            immutable_cases()
                .into_iter()
                .map(|c| (kind_of(c.base), c.expect)),
        )
        .collect();
    let uncovered: Vec<String> = rules
        .iter()
        .filter(|(kind, path, message)| {
            !cases.iter().any(|(k, expect)| {
                k == kind
                    && normalize(&expect[0]) == *path
                    && expect[1..].iter().any(|e| message.contains(e.as_str()))
            })
        })
        .map(|(kind, path, message)| format!("{kind} {path}: {message}"))
        .collect();
    assert!(
        uncovered.is_empty(),
        "CEL rules without a case: {uncovered:#?}"
    );
    assert!(rules.len() >= 30, "only {} rules", rules.len());
}
