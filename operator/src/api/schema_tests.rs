//! Unit tests of the generated schema (no API server): every field is described, the CEL rules
//! and immutability markers sit where they must, schema defaults agree with the Rust defaults,
//! and the examples parse into the types. The API server itself judges the rules in
//! `operator/tests/api_validation.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::doc::{fields, rules};
use super::*;

fn schema(kind: &str) -> Value {
    let crd = crd::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// The schema node at a dotted path (`spec.data.name`).
fn node(kind: &str, path: &str) -> Value {
    let mut cur = schema(kind);
    for part in path.split('.') {
        cur = cur["properties"][part].clone();
        assert!(!cur.is_null(), "{kind}: no schema at {path}");
    }
    cur
}

fn rule_texts(kind: &str, path: &str) -> Vec<String> {
    rules(&node(kind, path))
        .into_iter()
        .map(|r| r.rule)
        .collect()
}

#[test]
fn every_field_has_a_description() {
    let mut missing = Vec::new();
    let mut count = 0;
    for crd in crd::all() {
        for f in fields(&crd) {
            count += 1;
            if f.description.trim().is_empty() {
                missing.push(format!("{}.{}", crd.spec.names.kind, f.path));
            }
        }
    }
    assert!(count > 150, "only {count} fields walked");
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

#[test]
fn identity_fields_are_immutable() {
    for (kind, path) in [
        ("MailPool", "spec.clusterRef"),
        ("MailPool", "spec.data.name"),
        ("MailPool", "spec.index.name"),
        ("MailPool", "spec.data.erasureCoded"),
        ("MailPool", "spec.data.failureDomain"),
        ("MailPool", "spec.data.crushRoot"),
        ("DovecotFleet", "spec.poolRef"),
        ("MailCluster", "spec.rbox.userMapping"),
        ("MailCluster", "spec.rbox.userNamespace"),
        ("MailCluster", "spec.rbox.userSuffix"),
        ("MailCluster", "spec.rbox.publicNamespace"),
        ("MailCluster", "spec.rbox.metadataStorage"),
        ("MailCluster", "spec.rbox.metadataAttribute"),
        ("MailCluster", "spec.rbox.cfgObjectName"),
    ] {
        assert!(
            rule_texts(kind, path)
                .iter()
                .any(|r| r == "self == oldSelf"),
            "{kind} {path} is not immutable"
        );
        let msg = rules(&node(kind, path))
            .into_iter()
            .find(|r| r.rule == "self == oldSelf")
            .unwrap()
            .message;
        assert!(msg.contains("is immutable"), "{kind} {path}: {msg}");
    }
    // Fields the operator can change in place stay mutable.
    for (kind, path) in [
        ("MailPool", "spec.reclaimPolicy"),
        ("MailPool", "spec.data.replicated"),
        ("MailPool", "spec.data.quota"),
        ("MailPool", "spec.data.parameters"),
        ("DovecotFleet", "spec.replicas"),
        ("DovecotFleet", "spec.image"),
        ("MailCluster", "spec.ceph"),
        ("MailCluster", "spec.rbox.mailAttributes"),
    ] {
        assert!(
            !rule_texts(kind, path).iter().any(|r| r.contains("oldSelf")),
            "{kind} {path} should be mutable"
        );
    }
}

#[test]
fn cross_field_rules_are_in_the_schema() {
    let spec_rules = rule_texts("MailPool", "spec");
    assert!(spec_rules.contains(&"!has(self.index.erasureCoded)".to_string()));
    assert!(spec_rules.contains(&"self.data.name != self.index.name".to_string()));
    let index_msg = rules(&node("MailPool", "spec"))
        .into_iter()
        .find(|r| r.rule.contains("erasureCoded"))
        .unwrap()
        .message;
    assert!(index_msg.contains("omap"), "{index_msg}");
    let pool = rule_texts("MailPool", "spec.data");
    assert!(
        pool.iter()
            .any(|r| r.contains("has(self.replicated) != has(self.erasureCoded)"))
    );
    assert!(pool.iter().any(|r| r.contains("oldSelf.deviceClass")));
    let replicated = rule_texts("MailPool", "spec.data.replicated");
    assert!(
        replicated
            .iter()
            .any(|r| r.contains("self.minSize <= self.size"))
    );
    assert!(replicated.iter().any(|r| r.contains("self.allowSizeOne")));
    assert!(!rule_texts("MailPool", "spec.data.quota.maxBytes").is_empty());
    assert!(
        rule_texts("DovecotFleet", "spec")
            .iter()
            .any(|r| r.contains("acknowledgeEphemeralIndex"))
    );
    assert!(!rule_texts("DovecotFleet", "spec.auth").is_empty());
    assert!(!rule_texts("DovecotFleet", "spec.indexStorage").is_empty());
    assert!(!rule_texts("MailCluster", "spec.ceph").is_empty());
    assert!(!rule_texts("MailCluster", "spec.ceph.external").is_empty());
    // EC bounds are plain schema ranges.
    assert_eq!(
        node("MailPool", "spec.data.erasureCoded.k")["minimum"],
        json!(2.0)
    );
    assert_eq!(
        node("MailPool", "spec.data.erasureCoded.m")["minimum"],
        json!(1.0)
    );
    assert_eq!(
        node("MailPool", "spec.reclaimPolicy")["enum"],
        json!(["Retain", "Delete"])
    );
}

/// CEL cost: every string and list a rule can reach is bounded, or the API server would
/// refuse the rule as too expensive. Checked for the nodes that carry rules.
#[test]
fn strings_under_rules_are_bounded() {
    fn check(path: &str, v: &Value, bad: &mut Vec<String>) {
        let has_rules = v.get("x-kubernetes-validations").is_some();
        if has_rules {
            check_bounded(path, v, bad);
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                check(&format!("{path}.{k}"), child, bad);
            }
        }
    }
    fn check_bounded(path: &str, v: &Value, bad: &mut Vec<String>) {
        match v.get("type").and_then(Value::as_str) {
            Some("string") if v.get("maxLength").is_none() && v.get("enum").is_none() => {
                bad.push(path.to_string())
            }
            Some("object") => {
                if let Some(props) = v.get("properties").and_then(Value::as_object) {
                    for (k, child) in props {
                        // Kubernetes core types inside a rule's scope are not compared.
                        if ["resources", "scheduling", "imagePullSecrets"].contains(&k.as_str()) {
                            continue;
                        }
                        check_bounded(&format!("{path}.{k}"), child, bad);
                    }
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for kind in ["MailCluster", "MailPool", "DovecotFleet"] {
        check(kind, &schema(kind)["properties"]["spec"], &mut bad);
    }
    assert!(bad.is_empty(), "unbounded strings under CEL rules: {bad:?}");
}

/// Look up a dotted field path in a JSON value.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// The defaults the API server applies (from the schema) are the defaults the Rust types apply
/// when a field is missing: a controller reading an object that was never defaulted (e.g. in a
/// unit test) sees the same values.
#[test]
fn schema_defaults_match_rust_defaults() {
    let minimal: BTreeMap<&str, Value> = BTreeMap::from([
        (
            "MailCluster",
            serde_json::to_value(
                serde_json::from_value::<MailClusterSpec>(json!({"ceph": {"external": {
                    "monitors": ["m"], "keyringSecret": {"name": "s"}}}}))
                .unwrap(),
            )
            .unwrap(),
        ),
        (
            "MailPool",
            serde_json::to_value(
                serde_json::from_value::<MailPoolSpec>(json!({
                    "clusterRef": {"name": "c"},
                    "data": {"name": "d", "replicated": {}, "compression": {}},
                    "index": {"name": "i", "replicated": {}}}))
                .unwrap(),
            )
            .unwrap(),
        ),
        (
            "DovecotFleet",
            serde_json::to_value(
                serde_json::from_value::<DovecotFleetSpec>(json!({
                    "poolRef": {"name": "p"}, "image": "i",
                    "auth": {"passwdFile": {"secretName": "u"}, "ldap": {"secretName": "l"}, "sql": {"secretName": "q"}},
                    "indexStorage": {"emptyDir": {}}}))
                .unwrap(),
            )
            .unwrap(),
        ),
    ]);
    let mut compared = 0;
    for crd in crd::all() {
        let kind = crd.spec.names.kind.clone();
        let spec = &minimal[kind.as_str()];
        for f in fields(&crd) {
            let (Some(default), Some(rest)) = (&f.default, f.path.strip_prefix("spec.")) else {
                continue;
            };
            let Some(actual) = lookup(spec, rest) else {
                continue;
            };
            let default: Value = serde_json::from_str(default).unwrap();
            assert_eq!(actual, &default, "{kind} {}: Rust default differs", f.path);
            compared += 1;
        }
    }
    assert!(compared >= 35, "only {compared} defaults compared");
}

#[test]
fn default_rbox_settings_are_librmbs_defaults() {
    let cfg = RboxSettings::default().to_rbox_config().unwrap();
    assert_eq!(cfg, rbox_core::format::RboxConfig::default());
    let mut custom = RboxSettings {
        user_mapping: true,
        metadata_storage: MetadataStorage::Ima,
        ..Default::default()
    };
    let cfg = custom.to_rbox_config().unwrap();
    assert!(cfg.user_mapping);
    assert_eq!(
        cfg.metadata_storage,
        rbox_core::format::MetadataStorage::Ima
    );
    // What rbox-core refuses, the schema refuses too (here: a missing G).
    custom.mail_attributes = "MPORZ".into();
    assert!(custom.to_rbox_config().is_err());
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn example_docs(file: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(examples_dir().join(file)).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The examples parse into the typed objects, their rbox settings pass rbox-core's validation,
/// and their references point at objects in the same file.
#[test]
fn examples_parse_into_the_types() {
    for file in ["minimal.yaml", "large/platform.yaml"] {
        let docs = example_docs(file);
        let mut clusters = Vec::new();
        let mut pools = Vec::new();
        let mut fleets = Vec::new();
        for d in docs {
            match d["kind"].as_str().unwrap() {
                "MailCluster" => clusters.push(serde_json::from_value::<MailCluster>(d).unwrap()),
                "MailPool" => pools.push(serde_json::from_value::<MailPool>(d).unwrap()),
                "DovecotFleet" => fleets.push(serde_json::from_value::<DovecotFleet>(d).unwrap()),
                _ => {}
            }
        }
        assert_eq!(
            (clusters.len(), pools.len(), fleets.len()),
            (1, 1, 1),
            "{file}"
        );
        clusters[0].spec.rbox.to_rbox_config().unwrap();
        assert_eq!(
            Some(&pools[0].spec.cluster_ref.name),
            clusters[0].metadata.name.as_ref(),
            "{file}"
        );
        assert_eq!(
            Some(&fleets[0].spec.pool_ref.name),
            pools[0].metadata.name.as_ref(),
            "{file}"
        );
        assert!(pools[0].spec.index.replicated.is_some(), "{file}");
    }
    // The large example is the one the issue asks for.
    let large = example_docs("large/platform.yaml");
    let pool: MailPool = of_kind(&large, "MailPool");
    let ec = pool.spec.data.erasure_coded.as_ref().unwrap();
    assert_eq!((ec.k, ec.m), (4, 2));
    assert_eq!(pool.spec.data.device_class.as_deref(), Some("hdd"));
    assert_eq!(pool.spec.index.device_class.as_deref(), Some("ssd"));
    assert_eq!(pool.spec.data.failure_domain, FailureDomain::Host);
    assert!(pool.spec.data.quota.is_some() && pool.spec.index.quota.is_some());
    let fleet: DovecotFleet = of_kind(&large, "DovecotFleet");
    assert_eq!(fleet.spec.replicas, 6);
    assert!(fleet.spec.tls.is_some() && fleet.spec.auth.passwd_file.is_some());
}

/// The first document of `kind`, typed.
fn of_kind<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let doc = docs.iter().find(|d| d["kind"] == kind).cloned();
    serde_json::from_value(doc.unwrap_or_else(|| panic!("no {kind}"))).unwrap()
}

#[test]
fn kustomization_lists_existing_files() {
    let text = std::fs::read_to_string(examples_dir().join("kustomization.yaml")).unwrap();
    let k: Value = yaml_serde::from_str(&text).unwrap();
    let resources = k["resources"].as_array().unwrap();
    assert!(!resources.is_empty());
    for r in resources {
        let f = r.as_str().unwrap();
        assert!(examples_dir().join(f).is_file(), "{f} listed but missing");
    }
}

#[test]
fn short_names_and_columns() {
    for (kind, short, cols) in [
        ("MailCluster", "mcl", vec!["Phase", "Ready", "Health"]),
        (
            "MailPool",
            "mpool",
            vec!["Cluster", "Data", "Index", "Phase", "Ready"],
        ),
        (
            "DovecotFleet",
            "dfleet",
            vec!["Pool", "Desired", "Ready", "Available"],
        ),
    ] {
        let crd = crd::all()
            .into_iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap();
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_string()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        let names: Vec<String> = crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        for c in cols {
            assert!(names.contains(&c.to_string()), "{kind}: no column {c}");
        }
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .unwrap()
                .status
                .is_some()
        );
    }
}

#[test]
fn annotation_names() {
    assert_eq!(CONFIRM_DELETE_ANNOTATION, "mail.rbox.io/confirm-delete");
    assert_eq!(ROTATE_KEY_ANNOTATION, "mail.rbox.io/rotate-key");
    // The reclaimPolicy description tells users about the confirmation annotation.
    let d = node("MailPool", "spec.reclaimPolicy")["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(d.contains(CONFIRM_DELETE_ANNOTATION), "{d}");
}
