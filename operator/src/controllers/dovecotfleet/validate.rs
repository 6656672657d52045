//! Validate (pure): the fleet plus what it references (MailPool, MailCluster, Secrets,
//! ConfigMaps, PVC) → a [`Plan`], or the one reason the fleet cannot be rolled out now.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use crate::api::{DovecotFleet, MailCluster, MailPool, conditions as ct};
use crate::dovecot::config::{Auth, FleetConfig, Protocols, Rbox, config_hash};
use crate::dovecot::files;
use crate::k8s::conditions::is_true;

/// What the read step found. Secrets and ConfigMaps are reduced to their key names: the
/// validation needs nothing else, and secret values never leave the read step.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub pool: Option<MailPool>,
    pub cluster: Option<MailCluster>,
    /// Secret name → its keys (only the Secrets the fleet references).
    pub secrets: BTreeMap<String, BTreeSet<String>>,
    /// ConfigMap name → its keys.
    pub config_maps: BTreeMap<String, BTreeSet<String>>,
    /// Names of the PVCs that exist (of those referenced).
    pub claims: BTreeSet<String>,
}

/// Where Dovecot's own index files live.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexVolume {
    Claim(String),
    /// Lost with the pod: one replica, or acknowledged by the user.
    EmptyDir {
        size_limit: Option<Quantity>,
        acknowledged: bool,
    },
}

/// The Service port of each enabled protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePorts {
    pub imap: Option<i32>,
    pub pop3: Option<i32>,
    pub lmtp: Option<i32>,
    pub submission: Option<i32>,
}

/// Everything build needs, resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    pub config: FleetConfig,
    /// The ConfigMap's files (key, content), in key order.
    pub files: Vec<(&'static str, String)>,
    pub config_hash: String,
    pub ports: ServicePorts,
    pub keyring_secret: String,
    pub ceph_config_map: String,
    pub auth_secret: String,
    pub auth_key: String,
    pub tls_secret: Option<String>,
    pub index: IndexVolume,
}

/// Why a fleet cannot be rolled out (the `Degraded` condition's reason and message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

fn blocked(reason: &'static str, message: impl Into<String>) -> Blocked {
    Blocked {
        reason,
        message: message.into(),
    }
}

/// The keyring Secret's key and the ceph.conf ConfigMap's key the MailPool produces.
pub const KEYRING_KEY: &str = "keyring";
pub const CEPH_CONF_KEY: &str = "ceph.conf";

pub fn validate(fleet: &DovecotFleet, seen: &Observed) -> Result<Plan, Blocked> {
    let spec = &fleet.spec;
    let pool_name = &spec.pool_ref.name;
    let pool = seen.pool.as_ref().ok_or_else(|| {
        blocked(
            "MailPoolNotFound",
            format!("waiting for MailPool {pool_name}: it does not exist"),
        )
    })?;
    let status = pool.status.clone().unwrap_or_default();
    if !is_true(&status.conditions, ct::POOLS_READY) {
        return Err(blocked(
            "MailPoolNotReady",
            format!("waiting for MailPool {pool_name} to be PoolsReady"),
        ));
    }
    let missing = |what: &str| {
        blocked(
            "MailPoolNotReady",
            format!("waiting for MailPool {pool_name} to report {what} in its status"),
        )
    };
    let data_pool = status
        .data_pool
        .as_ref()
        .ok_or_else(|| missing("dataPool"))?;
    let index_pool = status
        .index_pool
        .as_ref()
        .ok_or_else(|| missing("indexPool"))?;
    let rados_user = status
        .dovecot_user
        .clone()
        .ok_or_else(|| missing("dovecotUser"))?;
    // librados wants the full entity name; accept a bare id too.
    let rados_user = if rados_user.starts_with("client.") {
        rados_user
    } else {
        format!("client.{rados_user}")
    };
    let keyring_secret = status
        .keyring_secret
        .clone()
        .ok_or_else(|| missing("keyringSecret"))?;
    let ceph_config_map = status
        .ceph_config_map
        .clone()
        .ok_or_else(|| missing("cephConfigMap"))?;
    let cluster = seen.cluster.as_ref().ok_or_else(|| {
        blocked(
            "MailClusterNotFound",
            format!(
                "MailCluster {} of MailPool {pool_name} does not exist",
                pool.spec.cluster_ref.name
            ),
        )
    })?;

    require_key(
        &seen.secrets,
        "Secret",
        &keyring_secret,
        KEYRING_KEY,
        "KeyringSecretMissing",
        &format!("the Ceph keyring of MailPool {pool_name}"),
    )?;
    require_key(
        &seen.config_maps,
        "ConfigMap",
        &ceph_config_map,
        CEPH_CONF_KEY,
        "CephConfigMissing",
        &format!("the ceph.conf of MailPool {pool_name}"),
    )?;

    let (auth, auth_secret, auth_key) = auth(fleet)?;
    require_key(
        &seen.secrets,
        "Secret",
        &auth_secret,
        &auth_key,
        "AuthSecretMissing",
        "spec.auth",
    )?;
    let tls_secret = spec.tls.as_ref().map(|t| t.secret_name.clone());
    if let Some(tls) = &tls_secret {
        for key in ["tls.crt", "tls.key"] {
            require_key(
                &seen.secrets,
                "Secret",
                tls,
                key,
                "TlsSecretMissing",
                "spec.tls",
            )?;
        }
    }

    let index = match (
        &spec.index_storage.persistent_volume_claim,
        &spec.index_storage.empty_dir,
    ) {
        (Some(pvc), None) => {
            if !seen.claims.contains(&pvc.claim_name) {
                return Err(blocked(
                    "IndexVolumeMissing",
                    format!(
                        "PersistentVolumeClaim {} (spec.indexStorage) does not exist",
                        pvc.claim_name
                    ),
                ));
            }
            IndexVolume::Claim(pvc.claim_name.clone())
        }
        (None, Some(ed)) => {
            // As the API's own rule: one replica may use an emptyDir (there is nothing to share,
            // the warning condition says what is lost); more need the acknowledgement.
            if spec.replicas > 1 && !spec.acknowledge_ephemeral_index {
                return Err(blocked(
                    "EphemeralIndexNotAcknowledged",
                    "spec.indexStorage.emptyDir with more than one replica loses Dovecot's index files (UIDs, flags) \
                     whenever a user lands on another pod: use a ReadWriteMany PersistentVolumeClaim, or set acknowledgeEphemeralIndex: true",
                ));
            }
            IndexVolume::EmptyDir {
                size_limit: ed.size_limit.clone(),
                acknowledged: spec.acknowledge_ephemeral_index,
            }
        }
        _ => {
            return Err(blocked(
                "InvalidSpec",
                "spec.indexStorage: set exactly one of persistentVolumeClaim or emptyDir",
            ));
        }
    };

    let mail_uid = positive_id(spec.mail_user.uid, "uid")?;
    let mail_gid = positive_id(spec.mail_user.gid, "gid")?;
    let p = &spec.protocols;
    let on = |enabled: bool, port: i32| enabled.then_some(port);
    let ports = ServicePorts {
        imap: on(p.imap.enabled, p.imap.port),
        pop3: on(p.pop3.enabled, p.pop3.port),
        lmtp: on(p.lmtp.enabled, p.lmtp.port),
        submission: on(p.submission.enabled, p.submission.port),
    };
    if ports == ServicePorts::default() {
        return Err(blocked(
            "InvalidSpec",
            "spec.protocols: enable at least one protocol",
        ));
    }

    let config = FleetConfig {
        fleet: format!(
            "{}/{}",
            fleet.namespace().unwrap_or_default(),
            fleet.name_any()
        ),
        rbox: Rbox {
            pool: data_pool.name.clone(),
            index_pool: index_pool.name.clone(),
            rados_user,
            cluster_name: cluster.spec.ceph.cluster_name.clone(),
            cfg_object: cluster.spec.rbox.cfg_object_name.clone(),
        },
        protocols: Protocols {
            imap: ports.imap.is_some(),
            pop3: ports.pop3.is_some(),
            lmtp: ports.lmtp.is_some(),
            submission: ports.submission.is_some(),
        },
        tls: tls_secret.is_some(),
        auth,
        mail_uid,
        mail_gid,
        extra_config: spec.extra_config.clone(),
    };
    let files = files::all(&config);
    let config_hash = config_hash(files.iter().map(|(k, v)| (*k, v.as_str())));
    Ok(Plan {
        config,
        files,
        config_hash,
        ports,
        keyring_secret,
        ceph_config_map,
        auth_secret,
        auth_key,
        tls_secret,
        index,
    })
}

fn positive_id(id: i64, what: &str) -> Result<u32, Blocked> {
    match u32::try_from(id) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(blocked(
            "InvalidSpec",
            format!(
                "spec.mailUser.{what} must be between 1 and 4294967295 (mail never runs as root), got {id}"
            ),
        )),
    }
}

/// The auth backend, its Secret and the key in it. The file is mounted under the name
/// Dovecot's documentation uses, whatever the key is called in the Secret.
fn auth(fleet: &DovecotFleet) -> Result<(Auth, String, String), Blocked> {
    let a = &fleet.spec.auth;
    match (&a.passwd_file, &a.ldap, &a.sql) {
        (Some(f), None, None) => Ok((
            Auth::PasswdFile {
                file: "passwd".into(),
            },
            f.secret_name.clone(),
            f.key.clone(),
        )),
        (None, Some(f), None) => Ok((
            Auth::Ldap {
                file: "dovecot-ldap.conf.ext".into(),
            },
            f.secret_name.clone(),
            f.key.clone(),
        )),
        (None, None, Some(f)) => Ok((
            Auth::Sql {
                file: "dovecot-sql.conf.ext".into(),
            },
            f.secret_name.clone(),
            f.key.clone(),
        )),
        _ => Err(blocked(
            "InvalidSpec",
            "spec.auth: set exactly one of passwdFile, ldap or sql",
        )),
    }
}

fn require_key(
    objects: &BTreeMap<String, BTreeSet<String>>,
    kind: &str,
    name: &str,
    key: &str,
    reason: &'static str,
    what: &str,
) -> Result<(), Blocked> {
    match objects.get(name) {
        None => Err(blocked(
            reason,
            format!("{kind} {name} ({what}) does not exist"),
        )),
        Some(keys) if !keys.contains(key) => Err(blocked(
            reason,
            format!("{kind} {name} ({what}) has no key {key}"),
        )),
        Some(_) => Ok(()),
    }
}
