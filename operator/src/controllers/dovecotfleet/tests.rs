//! Unit tests of validate, build and status from small YAML fixtures (no API server).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::build::{self, CONFIG_HASH_ANNOTATION, Owned};
use super::status::{self, EPHEMERAL_INDEX, Outcome, desired_status};
use super::validate::{Blocked, IndexVolume, Observed, Plan, validate};
use crate::api::{DovecotFleet, MailCluster, MailPool};

const FLEET: &str = r#"
apiVersion: mail.rbox.io/v1alpha1
kind: DovecotFleet
metadata: {name: imap, namespace: mail, uid: fleet-uid, generation: 3}
spec:
  poolRef: {name: pool}
  image: example.org/dovecot-rbox:2.3.19
  replicas: 3
  auth: {passwdFile: {secretName: users}}
  indexStorage: {persistentVolumeClaim: {claimName: index}}
"#;

const POOL: &str = r#"
apiVersion: mail.rbox.io/v1alpha1
kind: MailPool
metadata: {name: pool, namespace: mail}
spec:
  clusterRef: {name: ceph}
  data: {name: mail-data, replicated: {size: 1}}
  index: {name: mail-index, replicated: {size: 1}}
status:
  conditions:
  - {type: PoolsReady, status: "True", reason: Created, message: ok, lastTransitionTime: "2026-01-01T00:00:00Z"}
  dataPool: {name: mail-data}
  indexPool: {name: mail-index}
  dovecotUser: client.dovecot-pool
  keyringSecret: pool-keyring
  cephConfigMap: pool-ceph-conf
"#;

const CLUSTER: &str = r#"
apiVersion: mail.rbox.io/v1alpha1
kind: MailCluster
metadata: {name: ceph, namespace: mail}
spec:
  ceph:
    external: {monitors: ["127.0.0.1:6789"], keyringSecret: {name: admin}}
"#;

fn fleet(patch: &str) -> DovecotFleet {
    let mut v: serde_json::Value = yaml_serde::from_str(FLEET).unwrap();
    if !patch.is_empty() {
        let p: serde_json::Value = yaml_serde::from_str(patch).unwrap();
        merge(&mut v, p);
    }
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(&k);
                } else {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (a, b) => *a = b,
    }
}

fn keys(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn observed() -> Observed {
    Observed {
        pool: Some(yaml_serde::from_str::<MailPool>(POOL).unwrap()),
        cluster: Some(yaml_serde::from_str::<MailCluster>(CLUSTER).unwrap()),
        secrets: BTreeMap::from([
            ("pool-keyring".to_string(), keys(&["keyring"])),
            ("users".to_string(), keys(&["passwd"])),
            ("tls".to_string(), keys(&["tls.crt", "tls.key"])),
        ]),
        config_maps: BTreeMap::from([("pool-ceph-conf".to_string(), keys(&["ceph.conf"]))]),
        claims: keys(&["index"]),
    }
}

fn plan(f: &DovecotFleet) -> Plan {
    validate(f, &observed()).unwrap_or_else(|b| panic!("blocked: {b:?}"))
}

fn reason(f: &DovecotFleet, seen: &Observed) -> &'static str {
    match validate(f, seen) {
        Err(Blocked { reason, .. }) => reason,
        Ok(_) => "Ok",
    }
}

#[test]
fn plan_takes_pool_and_cluster_settings() {
    let p = plan(&fleet(""));
    let r = &p.config.rbox;
    assert_eq!(r.pool, "mail-data");
    assert_eq!(r.index_pool, "mail-index");
    assert_eq!(r.rados_user, "client.dovecot-pool");
    assert_eq!(r.cluster_name, "ceph");
    assert_eq!(r.cfg_object, "rbox_cfg");
    assert_eq!(p.keyring_secret, "pool-keyring");
    assert_eq!(p.ceph_config_map, "pool-ceph-conf");
    assert_eq!(p.config.fleet, "mail/imap");
    assert_eq!((p.config.mail_uid, p.config.mail_gid), (5000, 5000));
    assert_eq!(p.ports.imap, Some(143));
    assert_eq!(p.ports.lmtp, Some(24));
    assert_eq!(p.ports.pop3, None);
    assert_eq!(p.index, IndexVolume::Claim("index".into()));
    assert_eq!(p.config_hash.len(), 64);
    // A bare cephx id becomes the entity name librados wants.
    let mut seen = observed();
    if let Some(st) = seen.pool.as_mut().and_then(|p| p.status.as_mut()) {
        st.dovecot_user = Some("dovecot-pool".into());
    }
    let p = validate(&fleet(""), &seen).unwrap();
    assert_eq!(p.config.rbox.rados_user, "client.dovecot-pool");
}

/// A change that removes one prerequisite from what the read step saw.
type Breakage = fn(&mut Observed);

#[test]
fn missing_prerequisites_block_with_clear_reasons() {
    let f = fleet("");
    let mut seen = observed();
    seen.pool = None;
    assert_eq!(reason(&f, &seen), "MailPoolNotFound");

    let mut seen = observed();
    if let Some(s) = seen.pool.as_mut().and_then(|p| p.status.as_mut()) {
        s.conditions[0].status = "False".into();
    }
    assert_eq!(reason(&f, &seen), "MailPoolNotReady");
    let msg = validate(&f, &seen).unwrap_err().message;
    assert!(
        msg.contains("waiting for MailPool pool to be PoolsReady"),
        "{msg}"
    );

    let mut seen = observed();
    seen.secrets.remove("pool-keyring");
    assert_eq!(reason(&f, &seen), "KeyringSecretMissing");
    let msg = validate(&f, &seen).unwrap_err().message;
    assert!(
        msg.contains("Secret pool-keyring (the Ceph keyring of MailPool pool) does not exist"),
        "{msg}"
    );

    // One missing prerequisite at a time, each with its own reason.
    let cases: [(&str, Breakage); 4] = [
        ("CephConfigMissing", |o| o.config_maps.clear()),
        ("AuthSecretMissing", |o| {
            o.secrets.insert("users".into(), keys(&["other"]));
        }),
        ("IndexVolumeMissing", |o| o.claims.clear()),
        ("MailClusterNotFound", |o| o.cluster = None),
    ];
    for (want, break_it) in cases {
        let mut seen = observed();
        break_it(&mut seen);
        assert_eq!(reason(&f, &seen), want);
    }

    let tls = fleet("spec: {tls: {secretName: missing}}");
    assert_eq!(reason(&tls, &observed()), "TlsSecretMissing");
}

#[test]
fn ephemeral_index_needs_acknowledgement_beyond_one_replica() {
    let f =
        fleet("spec: {indexStorage: {persistentVolumeClaim: null, emptyDir: {sizeLimit: 1Gi}}}");
    assert_eq!(reason(&f, &observed()), "EphemeralIndexNotAcknowledged");
    let one =
        fleet("spec: {replicas: 1, indexStorage: {persistentVolumeClaim: null, emptyDir: {}}}");
    let p = plan(&one);
    assert_eq!(status::ephemeral_reason(&p.index), Some("SingleReplica"));
    let f = fleet(
        "spec: {acknowledgeEphemeralIndex: true, indexStorage: {persistentVolumeClaim: null, emptyDir: {sizeLimit: 1Gi}}}",
    );
    let p = plan(&f);
    assert!(matches!(
        p.index,
        IndexVolume::EmptyDir {
            size_limit: Some(_),
            acknowledged: true
        }
    ));
    assert_eq!(status::ephemeral_reason(&p.index), Some("Acknowledged"));
    assert_eq!(status::ephemeral_reason(&plan(&fleet("")).index), None);
    let sts = build::build(&f, &p).stateful_set;
    let vols = sts.spec.template.spec.unwrap().volumes.unwrap();
    let index = vols.iter().find(|v| v.name == "index").unwrap();
    assert!(index.empty_dir.is_some() && index.persistent_volume_claim.is_none());
}

fn owned(f: &DovecotFleet) -> Owned {
    build::build(f, &plan(f))
}

#[test]
fn statefulset_pod_is_hardened_probed_and_drained() {
    let f = fleet("spec: {terminationGracePeriodSeconds: 90}");
    let o = owned(&f);
    let sts = &o.stateful_set;
    assert_eq!(sts.metadata.name.as_deref(), Some("imap"));
    let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("DovecotFleet", "fleet-uid", Some(true))
    );
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some("imap-headless"));
    let tmpl = &spec.template;
    let hash = &tmpl
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[CONFIG_HASH_ANNOTATION];
    assert_eq!(hash, &plan(&f).config_hash);
    let pod = tmpl.spec.as_ref().unwrap();
    assert_eq!(pod.termination_grace_period_seconds, Some(90));
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(
        (psc.run_as_user, psc.run_as_group, psc.run_as_non_root),
        (Some(5000), Some(5000), Some(true))
    );
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let ready = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/ping"));
    assert!(c.liveness_probe.as_ref().unwrap().tcp_socket.is_some());
    let pre_stop = c
        .lifecycle
        .as_ref()
        .unwrap()
        .pre_stop
        .as_ref()
        .unwrap()
        .exec
        .as_ref()
        .unwrap();
    // 90 s grace = 5 s delay + 75 s drain + 10 s for Dovecot's shutdown.
    assert_eq!(
        pre_stop.command.as_ref().unwrap(),
        &["/bin/sh", "/etc/dovecot/drain.sh", "5", "75"]
    );
    let port = |n: &str| {
        c.ports
            .as_ref()
            .unwrap()
            .iter()
            .find(|p| p.name.as_deref() == Some(n))
            .map(|p| p.container_port)
    };
    assert_eq!(port("imap"), Some(10143));
    assert_eq!(port("lmtp"), Some(10024));
    assert_eq!(port("health"), Some(10080));
    assert_eq!(port("metrics"), Some(9900));
    assert_eq!(port("pop3"), None);
    // Writable paths are emptyDirs; Ceph config and keyring are mounted from the pool.
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.mount_path.clone(), m.name.clone()))
        .collect();
    for (path, vol) in [
        ("/etc/dovecot", "config"),
        ("/etc/passwd", "config"),
        ("/etc/ceph", "ceph"),
        ("/run/dovecot", "run"),
        ("/var/lib/dovecot", "state"),
        ("/tmp", "tmp"),
        ("/srv/dovecot-index", "index"),
        ("/etc/dovecot-auth", "auth"),
    ] {
        assert_eq!(mounts.get(path).map(String::as_str), Some(vol), "{path}");
    }
    let vols = pod.volumes.as_ref().unwrap();
    let ceph = vols
        .iter()
        .find(|v| v.name == "ceph")
        .unwrap()
        .projected
        .as_ref()
        .unwrap();
    let sources = ceph.sources.as_ref().unwrap();
    assert_eq!(
        sources[0].config_map.as_ref().unwrap().name,
        "pool-ceph-conf"
    );
    assert_eq!(sources[1].secret.as_ref().unwrap().name, "pool-keyring");
    let auth = vols
        .iter()
        .find(|v| v.name == "auth")
        .unwrap()
        .secret
        .as_ref()
        .unwrap();
    assert_eq!(auth.secret_name.as_deref(), Some("users"));
    assert_eq!(auth.items.as_ref().unwrap()[0].path, "passwd");
}

#[test]
fn drain_fits_in_the_grace_period() {
    assert_eq!(build::drain_args(120), (5, 105));
    assert_eq!(build::drain_args(15), (5, 0));
    assert_eq!(build::drain_args(6), (3, 0));
    assert_eq!(build::drain_args(0), (0, 0));
}

#[test]
fn config_map_carries_every_file_and_the_hash_follows_it() {
    let f = fleet("");
    let o = owned(&f);
    let data = o.config_map.data.as_ref().unwrap();
    let mut names: Vec<&str> = data.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dovecot.conf",
            "drain.sh",
            "group",
            "health-check.sh",
            "passwd"
        ]
    );
    assert!(data["dovecot.conf"].contains("rbox_pool_name = mail-data"));
    let h1 = plan(&f).config_hash;
    let h2 = plan(&fleet("spec: {extraConfig: \"mail_debug = yes\"}")).config_hash;
    let h3 = plan(&fleet("spec: {replicas: 5}")).config_hash;
    assert_ne!(h1, h2, "a config change must roll the pods");
    assert_eq!(h1, h3, "scaling must not roll the pods");
}

#[test]
fn services_follow_protocols() {
    let names = |o: &Owned| -> Vec<String> {
        o.services
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect()
    };
    let o = owned(&fleet(""));
    assert_eq!(names(&o), ["imap-imap", "imap-lmtp", "imap-headless"]);
    let o = owned(&fleet(
        "spec: {tls: {secretName: tls}, protocols: {pop3: {enabled: true}, lmtp: {enabled: false}}, service: {type: LoadBalancer, annotations: {a: b}}}",
    ));
    assert_eq!(names(&o), ["imap-imap", "imap-pop3", "imap-headless"]);
    let imap = &o.services[0];
    let spec = imap.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    let ports: Vec<(String, i32)> = spec
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect();
    assert_eq!(
        ports,
        [("imap".to_string(), 143), ("imaps".to_string(), 993)]
    );
    assert_eq!(imap.metadata.annotations.as_ref().unwrap()["a"], "b");
    let headless = o.services.last().unwrap().spec.as_ref().unwrap();
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    // LMTP is never exposed outside the cluster, whatever the Service type.
    let o = owned(&fleet("spec: {service: {type: LoadBalancer}}"));
    let lmtp = o
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("imap-lmtp"))
        .unwrap();
    assert_eq!(
        lmtp.spec.as_ref().unwrap().type_.as_deref(),
        Some("ClusterIP")
    );
    assert!(lmtp.metadata.annotations.is_none());
}

#[test]
fn pdb_allows_one_disruption() {
    let o = owned(&fleet(""));
    let spec = o.pdb.spec.unwrap();
    assert_eq!(
        spec.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    assert_eq!(
        spec.selector.unwrap().match_labels.unwrap()["mail.rbox.io/fleet"],
        "imap"
    );
}

fn sts(status: &str) -> StatefulSet {
    let mut s = owned(&fleet("")).stateful_set;
    s.metadata.generation = Some(2);
    s.status = Some(yaml_serde::from_str(status).unwrap());
    s
}

fn cond<'a>(st: &'a crate::api::DovecotFleetStatus, t: &str) -> (&'a str, &'a str) {
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t}"));
    (c.status.as_str(), c.reason.as_str())
}

fn now() -> Time {
    Time("2026-01-01T00:00:00Z".parse().unwrap())
}

const APPLIED: Outcome = Outcome::Applied {
    unchecked_reason: None,
    ephemeral_index: None,
};

#[test]
fn status_from_statefulset() {
    let f = fleet("");
    let done = sts(
        "{replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 2, currentRevision: r1, updateRevision: r1}",
    );
    let st = desired_status(&f, Some(&done), &APPLIED, now());
    assert_eq!(cond(&st, "Available"), ("True", "MinimumReplicasReady"));
    assert_eq!(cond(&st, "Progressing"), ("False", "Complete"));
    assert_eq!(cond(&st, "Degraded"), ("False", "AsExpected"));
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (3, 3, 3)
    );
    assert_eq!(
        st.config_hash.as_deref(),
        Some(plan(&f).config_hash.as_str())
    );
    assert_eq!(st.observed_generation, Some(3));
    // Unchanged input gives an identical status: nothing to write.
    let mut again = f.clone();
    again.status = Some(st.clone());
    assert_eq!(
        desired_status(
            &again,
            Some(&done),
            &APPLIED,
            Time("2026-02-01T00:00:00Z".parse().unwrap())
        ),
        st
    );

    let rolling = sts(
        "{replicas: 3, readyReplicas: 2, updatedReplicas: 1, observedGeneration: 2, currentRevision: r1, updateRevision: r2}",
    );
    let st = desired_status(&f, Some(&rolling), &APPLIED, now());
    assert_eq!(cond(&st, "Progressing"), ("True", "RollingUpdate"));
    assert_eq!(cond(&st, "Available"), ("True", "MinimumReplicasReady"));

    let down = sts("{replicas: 3, readyReplicas: 1, observedGeneration: 2}");
    let st = desired_status(&f, Some(&down), &APPLIED, now());
    assert_eq!(cond(&st, "Available"), ("False", "TooFewReplicasReady"));
    assert_eq!(cond(&st, "Progressing").0, "True");

    let stale = sts("{replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 1}");
    assert_eq!(
        cond(
            &desired_status(&f, Some(&stale), &APPLIED, now()),
            "Progressing"
        ),
        ("True", "Updating")
    );
}

#[test]
fn status_when_blocked_or_refused() {
    let f = fleet("");
    let blocked = Outcome::Blocked(Blocked {
        reason: "MailPoolNotReady",
        message: "waiting for MailPool pool to be PoolsReady".into(),
    });
    let st = desired_status(&f, None, &blocked, now());
    assert_eq!(cond(&st, "Degraded"), ("True", "MailPoolNotReady"));
    assert_eq!(cond(&st, "Progressing"), ("False", "MailPoolNotReady"));
    assert_eq!(cond(&st, "Available"), ("False", "NotDeployed"));

    let done = sts("{replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 2}");
    let refused = Outcome::Refused("Unknown setting: bogus".into());
    let st = desired_status(&f, Some(&done), &refused, now());
    let (s, r) = cond(&st, "Degraded");
    assert_eq!((s, r), ("True", "ConfigRefused"));
    let msg = &st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        msg.contains("Unknown setting: bogus") && msg.contains("keep their configuration"),
        "{msg}"
    );
    // The running pods still serve.
    assert_eq!(cond(&st, "Available").0, "True");

    // Without doveconf where the operator runs, the config is applied and the fleet says so.
    let unchecked = Outcome::Applied {
        unchecked_reason: Some(
            "doveconf is not available (doveconf: No such file or directory)".into(),
        ),
        ephemeral_index: None,
    };
    let st = desired_status(&f, Some(&done), &unchecked, now());
    assert_eq!(cond(&st, "Degraded"), ("False", "ConfigNotChecked"));
    let msg = &st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(msg.contains("not available"), "{msg}");
}

#[test]
fn ephemeral_index_warning_comes_and_goes() {
    let f = fleet("");
    let done = sts("{replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 2}");
    let eph = Outcome::Applied {
        unchecked_reason: None,
        ephemeral_index: Some("Acknowledged"),
    };
    let st = desired_status(&f, Some(&done), &eph, now());
    assert_eq!(cond(&st, EPHEMERAL_INDEX), ("True", "Acknowledged"));
    let mut f2 = f.clone();
    f2.status = Some(st);
    let st = desired_status(&f2, Some(&done), &APPLIED, now());
    assert!(!st.conditions.iter().any(|c| c.type_ == EPHEMERAL_INDEX));
}

/// Every DovecotFleet in `examples/` renders a configuration doveconf accepts, and its objects
/// build (with its Secrets, claim and a ready pool in place).
#[tokio::test]
async fn every_example_fleet_passes_doveconf() {
    use serde::Deserialize as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = vec![root.join("minimal.yaml")];
    for e in std::fs::read_dir(root.join("large")).unwrap().flatten() {
        files.push(e.path());
    }
    let mut seen_fleets = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let v = serde_json::Value::deserialize(doc).unwrap();
            if v["kind"] != "DovecotFleet" {
                continue;
            }
            let mut f: DovecotFleet = serde_json::from_value(v).unwrap();
            f.metadata.namespace = Some("mail".into());
            f.metadata.uid = Some("uid".into());
            f.spec.pool_ref.name = "pool".into();
            let mut seen = observed();
            let a = &f.spec.auth;
            for (name, key) in [
                a.passwd_file.as_ref().map(|s| (&s.secret_name, &s.key)),
                a.ldap.as_ref().map(|s| (&s.secret_name, &s.key)),
                a.sql.as_ref().map(|s| (&s.secret_name, &s.key)),
            ]
            .into_iter()
            .flatten()
            {
                seen.secrets.insert(name.clone(), keys(&[key]));
            }
            if let Some(t) = &f.spec.tls {
                seen.secrets
                    .insert(t.secret_name.clone(), keys(&["tls.crt", "tls.key"]));
            }
            if let Some(c) = &f.spec.index_storage.persistent_volume_claim {
                seen.claims.insert(c.claim_name.clone());
            }
            let p = validate(&f, &seen).unwrap_or_else(|b| panic!("{}: {b:?}", file.display()));
            if let Err(e) = crate::dovecot::doveconf::check(&p.config).await {
                panic!("{}: {e}", file.display());
            }
            let o = build::build(&f, &p);
            assert!(!o.services.is_empty());
            seen_fleets += 1;
        }
    }
    assert!(seen_fleets >= 2, "found {seen_fleets} example fleets");
}

/// Defect: the fleet controller bypassed the shared reconcile wrapper: no deadline, and
/// `reconciles_total` counted only successes.
#[tokio::test]
async fn a_failed_reconcile_goes_through_the_shared_wrapper() {
    use std::sync::{Arc, Mutex};

    use crate::controllers::fake_api::FakeApi;
    let api = FakeApi::builder()
        .fail(
            "/apis/mail.rbox.io/v1alpha1/namespaces/mail/mailpools/pool",
            500,
        )
        .start();
    let ctx = crate::controllers::Context::new(
        api.client.clone(),
        crate::runtime::metrics::Metrics::new(),
        Some("mail".into()),
    );
    let fctx = Arc::new(super::FleetCtx {
        events: crate::k8s::events::Events::new(api.client.clone(), "test"),
        ctx: ctx.clone(),
        checks: Mutex::default(),
    });
    let guard = Arc::new(kube::core::DeserializeGuard(Ok(fleet(""))));
    let result = super::reconcile(guard, fctx).await;
    assert!(result.is_err(), "{result:?}");
    let text = ctx.metrics.encode();
    assert!(
        text.contains(r#"rbox_operator_reconciles_total{controller="dovecotfleet"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"rbox_operator_reconcile_errors_total{controller="dovecotfleet",category="kube"} 1"#
        ),
        "{text}"
    );
}

/// Issue 17: an owned object deleted by hand while the spec is unchanged is recreated (as
/// before) and now reported: a Warning Event naming it and a metric by kind.
#[tokio::test]
async fn owned_objects_recreated_while_settled_are_reported_as_drift() {
    use crate::controllers::fake_api::FakeApi;
    use k8s_openapi::api::core::v1::ConfigMap;

    let api = FakeApi::builder().start();
    let ctx = crate::controllers::Context::new(
        api.client.clone(),
        crate::runtime::metrics::Metrics::new(),
        Some("mail".into()),
    );
    let events = crate::k8s::events::Events::new(api.client.clone(), "test");

    // The apply helper says when it had to create (the fake has no such ConfigMap).
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(api.client.clone(), "mail");
    let cm = owned(&fleet("")).config_map;
    let (_, created) = crate::k8s::apply::apply_if_changed(&cms, cm).await.unwrap();
    assert!(created);

    let created = [("StatefulSet", "imap".to_string())];
    // Never applied before (no status): creating is the operator's own work.
    super::report_drift(&ctx, &events, &fleet(""), &created).await;
    assert!(!ctx.metrics.encode().contains("drift_repaired_total{"));

    let settled = fleet(
        r#"
status:
  observedGeneration: 3
  conditions:
  - {type: Degraded, status: "False", reason: AsExpected, message: ok, lastTransitionTime: "2026-01-01T00:00:00Z"}
"#,
    );
    super::report_drift(&ctx, &events, &settled, &created).await;
    assert!(
        ctx.metrics.encode().contains(
            r#"rbox_operator_drift_repaired_total{controller="dovecotfleet",what="statefulset"} 1"#
        ),
        "{}",
        ctx.metrics.encode()
    );
    let ev = api
        .wait_for("the Event", |s| s.path.ends_with("/events"))
        .await;
    assert!(ev.body.contains("DriftRepaired"), "{}", ev.body);
    assert!(ev.body.contains("StatefulSet imap"), "{}", ev.body);
}
