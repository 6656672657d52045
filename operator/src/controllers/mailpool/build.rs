//! Pure: the desired Ceph pools, `rbox_cfg`, cephx user, keyring Secret and ceph.conf
//! ConfigMap of a MailPool.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use rbox_core::format::cfg::RboxConfig;

use crate::api::{MailPool, PoolSettings, RboxSettings};
use crate::ceph::pool::{DesiredPool, Layout};
use crate::ceph::user;
use crate::controllers::ceph_errors::Error;

/// PG count of a new pool when the spec gives no `pgNumMin`: small, the autoscaler grows it.
pub const DEFAULT_PG_NUM: u32 = 8;

/// Label on everything the operator creates for a MailPool (also the watch selector).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "rbox-operator");
pub const POOL_LABEL: &str = "mail.rbox.io/mailpool";

pub fn secret_name(mp: &MailPool) -> String {
    format!("{}-ceph-keyring", mp.name_any())
}

pub fn config_map_name(mp: &MailPool) -> String {
    format!("{}-ceph-conf", mp.name_any())
}

/// Where fleets mount the keyring (next to ceph.conf).
pub const KEYRING_PATH: &str = "/etc/ceph/keyring";

/// `client.<dovecotUser>` or `client.rbox.<namespace>.<name>`.
pub fn dovecot_entity(mp: &MailPool) -> String {
    match &mp.spec.dovecot_user {
        Some(u) => user::entity(u),
        None => format!(
            "client.rbox.{}.{}",
            mp.namespace().unwrap_or_default(),
            mp.name_any()
        ),
    }
}

/// The EC profile a pool uses when the spec names none.
pub fn default_profile_name(pool: &str) -> String {
    format!("{pool}_ecprofile")
}

/// A Kubernetes quantity (`500Gi`, `2T`, `1000`, `1.5Gi`) in bytes.
pub fn parse_quantity(q: &str) -> Result<u64, String> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{q:?} is not a quantity such as 500Gi"))?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => return Err(format!("unknown unit {other:?} in {q:?}")),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{q:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// One pool of the spec as the Ceph planner wants it.
/// `owner` (the MailPool's uid) is recorded on a pool the operator creates.
pub fn desired_pool(p: &PoolSettings, owner: Option<String>) -> Result<DesiredPool, Error> {
    let layout = match (&p.replicated, &p.erasure_coded) {
        (Some(r), _) => Layout::Replicated {
            size: r.size,
            min_size: r.min_size,
        },
        (None, Some(ec)) => Layout::Erasure {
            k: ec.k,
            m: ec.m,
            profile: ec
                .profile_name
                .clone()
                .unwrap_or_else(|| default_profile_name(&p.name)),
        },
        (None, None) => {
            return Err(Error::Invalid(format!(
                "pool {}: set replicated or erasureCoded",
                p.name
            )));
        }
    };
    let quota_max_bytes = match p.quota.as_ref().and_then(|q| q.max_bytes.as_ref()) {
        Some(b) => parse_quantity(&b.0).map_err(Error::Invalid)?,
        None => 0,
    };
    Ok(DesiredPool {
        name: p.name.clone(),
        layout,
        device_class: p.device_class.clone(),
        failure_domain: p.failure_domain.as_str().to_string(),
        crush_root: p.crush_root.clone(),
        compression_mode: p.compression.as_ref().map(|c| c.mode.as_str().to_string()),
        compression_algorithm: p
            .compression
            .as_ref()
            .and_then(|c| c.algorithm)
            .map(|a| a.as_str().to_string()),
        quota_max_bytes,
        quota_max_objects: p.quota.as_ref().and_then(|q| q.max_objects).unwrap_or(0),
        pg_num: p.pg_num_min.unwrap_or(DEFAULT_PG_NUM).max(1),
        pg_num_min: p.pg_num_min,
        target_size_ratio: p.target_size_ratio,
        bulk: p.bulk,
        parameters: p.parameters.clone(),
        owner,
    })
}

/// The `rbox_cfg` the MailCluster's `spec.rbox` describes, validated by rbox-core.
pub fn rbox_config(s: &RboxSettings) -> Result<RboxConfig, Error> {
    let mut cfg = RboxConfig::default();
    let pairs = [
        ("user_mapping", s.user_mapping.to_string()),
        ("user_ns", s.user_namespace.clone()),
        ("user_suffix", s.user_suffix.clone()),
        ("rbox_public_namespace", s.public_namespace.clone()),
        ("rbox_mail_attributes", s.mail_attributes.clone()),
        (
            "rbox_updateable_attributes",
            s.updateable_attributes.clone(),
        ),
        ("rbox_update_attributes", s.update_attributes.to_string()),
        (
            "rbox_metadata_storage",
            s.metadata_storage.as_str().to_string(),
        ),
        ("rbox_storage_metadata_attr", s.metadata_attribute.clone()),
    ];
    for (k, v) in pairs {
        cfg.set(k, &v)
            .map_err(|e| Error::Invalid(format!("MailCluster spec.rbox: {e}")))?;
    }
    Ok(cfg)
}

/// Keys of an existing `rbox_cfg` that must never be rewritten under stored mail: changing
/// them makes Dovecot look for mail where it is not.
pub const LAYOUT_KEYS: &[&str] = &[
    "user_mapping",
    "user_ns",
    "user_suffix",
    "rbox_public_namespace",
    "rbox_metadata_storage",
    "rbox_storage_metadata_attr",
];

/// Layout keys on which `existing` and `desired` differ.
pub fn layout_conflicts(existing: &RboxConfig, desired: &RboxConfig) -> Vec<String> {
    LAYOUT_KEYS
        .iter()
        .filter(|k| existing.get(k) != desired.get(k))
        .map(|k| {
            format!(
                "{k}={} (spec: {})",
                existing.get(k).unwrap_or_default(),
                desired.get(k).unwrap_or_default()
            )
        })
        .collect()
}

fn meta(mp: &MailPool, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: mp.namespace(),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (POOL_LABEL.to_string(), mp.name_any()),
        ])),
        owner_references: mp.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    }
}

/// The Secret fleets mount: the keyring file, plus the bare key and user id (CSI style).
pub fn keyring_secret(mp: &MailPool, entity: &str, key: &rbox_core::rados::Secret) -> Secret {
    let keyring = user::keyring(entity, key, &[]);
    Secret {
        metadata: meta(mp, secret_name(mp)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("keyring".to_string(), ByteString(keyring.0.into_bytes())),
            ("key".to_string(), ByteString(key.0.clone().into_bytes())),
            (
                "userID".to_string(),
                ByteString(entity.trim_start_matches("client.").as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

/// The ConfigMap with ceph.conf (monitors and where the keyring is mounted).
pub fn ceph_conf_map(
    mp: &MailPool,
    mon_host: &str,
    entity: &str,
    pools: (&str, &str),
) -> ConfigMap {
    let conf = format!(
        "# Generated by rbox-operator for MailPool {}/{}.\n[global]\nmon_host = {mon_host}\n\n[{entity}]\nkeyring = {KEYRING_PATH}\n",
        mp.namespace().unwrap_or_default(),
        mp.name_any()
    );
    ConfigMap {
        metadata: meta(mp, config_map_name(mp)),
        data: Some(BTreeMap::from([
            ("ceph.conf".to_string(), conf),
            ("user".to_string(), entity.to_string()),
            ("dataPool".to_string(), pools.0.to_string()),
            ("indexPool".to_string(), pools.1.to_string()),
        ])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(yaml: &str) -> MailPool {
        yaml_serde::from_str(yaml).unwrap()
    }

    const FIXTURE: &str = r#"
apiVersion: mail.rbox.io/v1alpha1
kind: MailPool
metadata: {name: mail, namespace: ns, uid: "1234"}
spec:
  clusterRef: {name: ceph}
  data:
    name: mail-data
    erasureCoded: {k: 2, m: 1}
    failureDomain: osd
    deviceClass: hdd
    quota: {maxBytes: 10Gi, maxObjects: 1000}
    compression: {mode: aggressive, algorithm: zstd}
    pgNumMin: 16
    targetSizeRatio: 0.5
    bulk: true
    parameters: {nodeep_scrub: "1"}
  index:
    name: mail-index
    replicated: {size: 3, minSize: 2}
"#;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("10Gi").unwrap(), 10 << 30);
        assert_eq!(parse_quantity("2T").unwrap(), 2_000_000_000_000);
        assert_eq!(parse_quantity("1000").unwrap(), 1000);
        assert_eq!(parse_quantity("1.5Ki").unwrap(), 1536);
        assert!(parse_quantity("12Qi").is_err());
        assert!(parse_quantity("Gi").is_err());
    }

    #[test]
    fn fixture_builds_the_expected_pools() {
        let mp = pool(FIXTURE);
        let data = desired_pool(&mp.spec.data, None).unwrap();
        assert_eq!(
            data.layout,
            Layout::Erasure {
                k: 2,
                m: 1,
                profile: "mail-data_ecprofile".into()
            }
        );
        assert_eq!(data.quota_max_bytes, 10 << 30);
        assert_eq!(data.quota_max_objects, 1000);
        assert_eq!(data.pg_num, 16);
        assert_eq!(data.compression_mode.as_deref(), Some("aggressive"));
        assert_eq!(data.compression_algorithm.as_deref(), Some("zstd"));
        assert_eq!(data.device_class.as_deref(), Some("hdd"));
        assert_eq!(data.failure_domain, "osd");
        assert_eq!(data.bulk, Some(true));
        let index = desired_pool(&mp.spec.index, None).unwrap();
        assert_eq!(
            index.layout,
            Layout::Replicated {
                size: 3,
                min_size: Some(2)
            }
        );
        // Defaults: failure domain host, root default, pg_num 8.
        assert_eq!(index.failure_domain, "host");
        assert_eq!(index.crush_root, "default");
        assert_eq!(index.pg_num, DEFAULT_PG_NUM);
        assert_eq!(index.rule_name(), "rbox-default-host");
    }

    #[test]
    fn secret_and_config_map_are_owned_and_name_the_user() {
        let mp = pool(FIXTURE);
        let entity = dovecot_entity(&mp);
        assert_eq!(entity, "client.rbox.ns.mail");
        let key = rbox_core::rados::Secret("AQkey==".into());
        let s = keyring_secret(&mp, &entity, &key);
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "MailPool");
        assert_eq!(owner.controller, Some(true));
        let kr = String::from_utf8(s.data.as_ref().unwrap()["keyring"].0.clone()).unwrap();
        assert_eq!(kr, "[client.rbox.ns.mail]\n\tkey = AQkey==\n");
        let cm = ceph_conf_map(
            &mp,
            "[v2:127.0.0.1:3300]",
            &entity,
            ("mail-data", "mail-index"),
        );
        let conf = &cm.data.as_ref().unwrap()["ceph.conf"];
        assert!(conf.contains("mon_host = [v2:127.0.0.1:3300]"));
        assert!(conf.contains("keyring = /etc/ceph/keyring"));
    }

    #[test]
    fn rbox_config_from_defaults_matches_upstream_bytes() {
        let cfg = rbox_config(&RboxSettings::default()).unwrap();
        assert_eq!(cfg, RboxConfig::default());
        let other = RboxSettings {
            user_mapping: true,
            ..Default::default()
        };
        let conflicts = layout_conflicts(&cfg, &rbox_config(&other).unwrap());
        assert_eq!(conflicts, ["user_mapping=false (spec: true)"]);
    }
}
