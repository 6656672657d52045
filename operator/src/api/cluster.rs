//! MailCluster: a Ceph cluster that holds mail, and the rules shared by everything in it.

// kube's `printcolumn(...)` repeats `name`/`type_` keys, which clippy mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEPHX_CLIENT_PATTERN, CONFIG_KEY_PATTERN, DNS_SUBDOMAIN_PATTERN};

/// Desired state of a MailCluster: how to reach Ceph, the rbox storage layout shared by all its
/// MailPools, and how the operator checks its health.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mail.rbox.io",
    version = "v1alpha1",
    kind = "MailCluster",
    plural = "mailclusters",
    shortname = "mcl",
    category = "rbox",
    namespaced,
    status = "MailClusterStatus",
    derive = "PartialEq",
    doc = "A Ceph cluster that holds mail (reached directly or through Rook), the rbox storage layout shared by every MailPool in it, and the canary that proves it works.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Health",
        type_ = "string",
        json_path = ".status.health",
        description = "Ceph health: HEALTH_OK, HEALTH_WARN or HEALTH_ERR"
    ),
    printcolumn(
        name = "Ceph",
        type_ = "string",
        json_path = ".status.cephVersion",
        priority = 1
    ),
    printcolumn(
        name = "FSID",
        type_ = "string",
        json_path = ".status.fsid",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MailClusterSpec {
    /// How the operator reaches Ceph: exactly one of `external` (monitor addresses plus a
    /// Secret with a keyring) or `rook` (a Rook CephCluster whose monitors and admin secret the
    /// operator reads).
    pub ceph: CephConnection,
    /// The rbox storage layout, written to the `rbox_cfg` object of every MailPool's data pool
    /// and read by the Dovecot rbox plugin. Fields that decide where existing mail lives are
    /// immutable: changing them would hide every stored mail.
    #[serde(default)]
    pub rbox: RboxSettings,
    /// How often and how strictly the operator checks that mail can be stored.
    #[serde(default)]
    pub health: HealthSettings,
}

/// How to reach Ceph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.external) != has(self.rook)",
        "message": "set exactly one of ceph.external (monitor addresses and a keyring Secret) or ceph.rook (a Rook CephCluster)"
    }
]))]
pub struct CephConnection {
    /// A Ceph cluster outside Kubernetes (or not managed by Rook): monitor addresses plus a
    /// Secret holding the keyring of a cephx user allowed to manage pools and users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalCeph>,
    /// A Ceph cluster run by Rook in this Kubernetes cluster: the operator reads its monitor
    /// endpoints (ConfigMap `rook-ceph-mon-endpoints`) and admin keyring (Secret `rook-ceph-mon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rook: Option<RookCeph>,
    /// Ceph cluster name, as in `<name>.conf` and the `--cluster` option. Almost always `ceph`.
    #[serde(default = "default_cluster_name")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z][a-z0-9_-]*$"))]
    pub cluster_name: String,
    /// Deadlines of every Ceph call the operator makes; a hung cluster never blocks others.
    #[serde(default)]
    pub timeouts: CephTimeouts,
}

fn default_cluster_name() -> String {
    "ceph".into()
}

/// An external Ceph cluster: monitors and a keyring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.monitors) != has(self.monitorsSecretKey)",
        "message": "set exactly one of external.monitors (the addresses) or external.monitorsSecretKey (a key of the keyring Secret that holds them)"
    }
]))]
pub struct ExternalCeph {
    /// Monitor addresses, as in ceph.conf's `mon_host`: `10.0.0.1:6789`, `mon1.example.com`, or
    /// an address vector such as `[v2:10.0.0.1:3300,v1:10.0.0.1:6789]`. Exclusive with
    /// `monitorsSecretKey`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 16),
        inner(length(min = 1, max = 256), regex(pattern = r"^\S+$"))
    )]
    pub monitors: Vec<String>,
    /// Key of the keyring Secret (`keyringSecret.name`) whose value holds the monitor addresses
    /// in `mon_host` syntax, read at every connect: for clusters whose monitors move, or where
    /// one Secret carries everything needed to connect. Exclusive with `monitors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = CONFIG_KEY_PATTERN))]
    pub monitors_secret_key: Option<String>,
    /// The Secret (same namespace) holding the keyring of `user`: a Ceph keyring file as
    /// `ceph auth get client.<id>` prints it.
    pub keyring_secret: KeyringSecretRef,
    /// The cephx user the operator connects as, e.g. `client.rbox-operator`. It needs caps to
    /// create pools, CRUSH rules and users (`mon 'allow *' osd 'allow *' mgr 'allow r'`, or
    /// `client.admin`).
    #[serde(default = "default_ceph_user")]
    #[schemars(length(min = 8, max = 128), regex(pattern = CEPHX_CLIENT_PATTERN))]
    pub user: String,
}

fn default_ceph_user() -> String {
    "client.admin".into()
}

/// A key of a Secret that holds a Ceph keyring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyringSecretRef {
    /// Name of the Secret, in the same namespace as the MailCluster.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// Key of the keyring inside the Secret.
    #[serde(default = "default_keyring_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = CONFIG_KEY_PATTERN))]
    pub key: String,
}

fn default_keyring_key() -> String {
    "keyring".into()
}

/// A Rook-managed Ceph cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RookCeph {
    /// Name of the Rook `CephCluster` object.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub ceph_cluster_name: String,
    /// Namespace of the `CephCluster` (e.g. `rook-ceph`). Default: the MailCluster's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// Deadlines of Ceph calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CephTimeouts {
    /// Seconds to wait for a connection to the monitors (`client_mount_timeout`).
    #[serde(default = "default_ten")]
    #[schemars(range(min = 1, max = 300))]
    pub connect_seconds: u32,
    /// Seconds to wait for each Ceph command or RADOS operation.
    #[serde(default = "default_ten")]
    #[schemars(range(min = 1, max = 600))]
    pub operation_seconds: u32,
}

fn default_ten() -> u32 {
    10
}

impl Default for CephTimeouts {
    fn default() -> Self {
        Self {
            connect_seconds: 10,
            operation_seconds: 10,
        }
    }
}

/// Which metadata module the rbox plugin uses for a mail's attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetadataStorage {
    /// One RADOS xattr per attribute.
    #[default]
    Default,
    /// All immutable attributes in one JSON xattr (named by `metadataAttribute`).
    Ima,
}

impl MetadataStorage {
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataStorage::Default => "default",
            MetadataStorage::Ima => "ima",
        }
    }
}

/// The `rbox_cfg` settings (librmb's config object; defaults are librmb's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!self.userMapping || self.userNamespace != self.publicNamespace",
        "fieldPath": ".publicNamespace",
        "message": "rbox.publicNamespace must differ from rbox.userNamespace when userMapping is on: the mapping objects would mix with shared folders"
    }
]))]
pub struct RboxSettings {
    /// Name of the config object (`rbox_cfg_object_name`) in the default RADOS namespace of the
    /// data pool. Immutable.
    #[serde(default = "default_cfg_object_name")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_.-]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "rbox.cfgObjectName is immutable: Dovecot finds the storage layout by this name"}
        ])
    )]
    pub cfg_object_name: String,
    /// `user_mapping`: look up each user's RADOS namespace in a mapping object (so users can
    /// be renamed) instead of using `<user><userSuffix>` directly. Immutable: switching it hides
    /// every stored mail.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "rbox.userMapping is immutable: switching it hides every stored mail"}
    ]))]
    pub user_mapping: bool,
    /// `user_ns`: RADOS namespace that holds the user mapping objects. Immutable.
    #[serde(default = "default_user_namespace")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "rbox.userNamespace is immutable: the existing user mapping lives there"}
        ])
    )]
    pub user_namespace: String,
    /// `user_suffix`: appended to a user name to form its namespace (or mapping key):
    /// user `alice` with `_u` → `alice_u`. Immutable.
    #[serde(default = "default_user_suffix")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_.@+-]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "rbox.userSuffix is immutable: every user's namespace name contains it"}
        ])
    )]
    pub user_suffix: String,
    /// `rbox_public_namespace`: namespace of shared (owner-less) folders. Immutable.
    #[serde(default = "default_public_namespace")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "rbox.publicNamespace is immutable: shared folders live there"}
        ])
    )]
    pub public_namespace: String,
    /// `rbox_mail_attributes`: metadata letters written with every mail (each at most once,
    /// from `MGPORZVBUIACFKS`; must contain `M` (mailbox GUID) and `G` (mail GUID), without
    /// which mail cannot be recovered).
    #[serde(default = "default_mail_attributes")]
    #[schemars(
        length(min = 2, max = 15),
        regex(pattern = r"^[MGPORZVBUIACFKS]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self.contains('M') && self.contains('G')", "message": "rbox.mailAttributes must contain M (mailbox GUID) and G (mail GUID): without them mail cannot be recovered"},
            {"rule": "['M','G','P','O','R','Z','V','B','U','I','A','C','F','K','S'].all(c, self.indexOf(c) == self.lastIndexOf(c))", "message": "rbox.mailAttributes must list each letter at most once"}
        ])
    )]
    pub mail_attributes: String,
    /// `rbox_updateable_attributes`: letters that may be rewritten after a mail was saved
    /// (only when `updateAttributes` is on). Each at most once, from `MGPORZVBUIACFKS`.
    #[serde(default = "default_updateable_attributes")]
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[MGPORZVBUIACFKS]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "['M','G','P','O','R','Z','V','B','U','I','A','C','F','K','S'].all(c, self.indexOf(c) == self.lastIndexOf(c))", "message": "rbox.updateableAttributes must list each letter at most once"}
        ])
    )]
    pub updateable_attributes: String,
    /// `rbox_update_attributes`: allow rewriting the `updateableAttributes` letters.
    #[serde(default)]
    pub update_attributes: bool,
    /// `rbox_metadata_storage`: `default` (one xattr per attribute) or `ima` (one JSON xattr).
    /// Immutable: stored mail keeps the format it was written with.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "rbox.metadataStorage is immutable: stored mail keeps the metadata format it was written with"}
    ]))]
    pub metadata_storage: MetadataStorage,
    /// `rbox_storage_metadata_attr`: name of the xattr the `ima` module writes. Must not be a
    /// single metadata letter. Immutable.
    #[serde(default = "default_metadata_attribute")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z0-9_.-]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "!(self.size() == 1 && 'MGPORZVBUIACFKS'.contains(self))", "message": "rbox.metadataAttribute must not be a single metadata letter (MGPORZVBUIACFKS): it would collide with that attribute's xattr"},
            {"rule": "self == oldSelf", "message": "rbox.metadataAttribute is immutable: stored mail keeps its metadata under this name"}
        ])
    )]
    pub metadata_attribute: String,
}

fn default_cfg_object_name() -> String {
    "rbox_cfg".into()
}
fn default_user_namespace() -> String {
    "users".into()
}
fn default_user_suffix() -> String {
    "_u".into()
}
fn default_public_namespace() -> String {
    "public".into()
}
fn default_mail_attributes() -> String {
    "MGPORZVBUI".into()
}
fn default_updateable_attributes() -> String {
    "B".into()
}
fn default_metadata_attribute() -> String {
    "ima".into()
}

impl Default for RboxSettings {
    fn default() -> Self {
        Self {
            cfg_object_name: default_cfg_object_name(),
            user_mapping: false,
            user_namespace: default_user_namespace(),
            user_suffix: default_user_suffix(),
            public_namespace: default_public_namespace(),
            mail_attributes: default_mail_attributes(),
            updateable_attributes: default_updateable_attributes(),
            update_attributes: false,
            metadata_storage: MetadataStorage::Default,
            metadata_attribute: default_metadata_attribute(),
        }
    }
}

impl RboxSettings {
    /// The settings as `rbox_cfg` key/value pairs, in librmb's key order.
    pub fn cfg_entries(&self) -> [(&'static str, String); 9] {
        [
            ("user_mapping", self.user_mapping.to_string()),
            ("user_ns", self.user_namespace.clone()),
            ("user_suffix", self.user_suffix.clone()),
            ("rbox_public_namespace", self.public_namespace.clone()),
            ("rbox_mail_attributes", self.mail_attributes.clone()),
            (
                "rbox_updateable_attributes",
                self.updateable_attributes.clone(),
            ),
            ("rbox_update_attributes", self.update_attributes.to_string()),
            (
                "rbox_metadata_storage",
                self.metadata_storage.as_str().to_string(),
            ),
            (
                "rbox_storage_metadata_attr",
                self.metadata_attribute.clone(),
            ),
        ]
    }

    /// The `rbox_cfg` object these settings describe, validated by rbox-core (the schema
    /// already refuses what rbox-core refuses; this is the last word).
    pub fn to_rbox_config(
        &self,
    ) -> Result<rbox_core::format::RboxConfig, rbox_core::format::CfgError> {
        let updates: Vec<String> = self
            .cfg_entries()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rbox_core::format::RboxConfig::default().apply_updates(&updates)
    }
}

/// How the operator checks the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.canaryTimeoutSeconds <= self.canaryIntervalSeconds",
        "fieldPath": ".canaryTimeoutSeconds",
        "message": "health.canaryTimeoutSeconds must not exceed health.canaryIntervalSeconds"
    }
]))]
pub struct HealthSettings {
    /// Seconds between two canaries per MailPool (save, read, verify and delete a real mail).
    #[serde(default = "default_canary_interval")]
    #[schemars(range(min = 10, max = 86400))]
    pub canary_interval_seconds: u32,
    /// Seconds a canary may take before it counts as failed (at most `canaryIntervalSeconds`).
    #[serde(default = "default_canary_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub canary_timeout_seconds: u32,
    /// Warn (condition and Event) when a pool uses this percentage of its quota.
    #[serde(default = "default_quota_warning")]
    #[schemars(range(min = 1, max = 100))]
    pub quota_warning_percent: u32,
}

fn default_canary_interval() -> u32 {
    60
}
// At most the smallest interval, so setting only `canaryIntervalSeconds` never trips the
// timeout <= interval rule.
fn default_canary_timeout() -> u32 {
    10
}
fn default_quota_warning() -> u32 {
    85
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            canary_interval_seconds: default_canary_interval(),
            canary_timeout_seconds: default_canary_timeout(),
            quota_warning_percent: default_quota_warning(),
        }
    }
}

// Lifecycle of a MailCluster (documented on `MailClusterStatus::phase`: a type doc here would
// replace the field's description in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterPhase {
    // Not connected yet (first connect in progress, or monitors unreachable).
    Connecting,
    // Connected and Ceph reports HEALTH_OK.
    Ready,
    // Connected, but Ceph reports HEALTH_WARN or HEALTH_ERR.
    Degraded,
    // The spec cannot work (e.g. the keyring Secret is missing); see the conditions.
    Failed,
}

/// Ceph's overall health, as `ceph health` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CephHealth {
    #[serde(rename = "HEALTH_OK")]
    Ok,
    #[serde(rename = "HEALTH_WARN")]
    Warn,
    #[serde(rename = "HEALTH_ERR")]
    Err,
}

/// One failing Ceph health check, in short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Check name as Ceph reports it, e.g. `OSD_DOWN`, `POOL_NEARFULL`.
    pub name: String,
    /// HEALTH_WARN or HEALTH_ERR.
    pub severity: CephHealth,
    /// Ceph's one-line summary of the check.
    pub summary: String,
}

/// Raw capacity of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Raw bytes of all OSDs.
    pub total_bytes: u64,
    /// Raw bytes used.
    pub used_bytes: u64,
    /// Raw bytes available.
    pub available_bytes: u64,
}

/// Observed state of a MailCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailClusterStatus {
    /// `CephConnected`, `Ready`, `Degraded` (see `rbox_operator::api::conditions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Connecting` (first connect in progress, or monitors unreachable), `Ready` (connected,
    /// HEALTH_OK), `Degraded` (connected, but Ceph reports HEALTH_WARN (still usable: the
    /// `Ready` condition stays True) or HEALTH_ERR) or `Failed` (the spec cannot work, e.g. the
    /// keyring Secret is missing; see the conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// The Ceph cluster's fsid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsid: Option<String>,
    /// Version of the Ceph monitors, e.g. `16.2.15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph_version: Option<String>,
    /// HEALTH_OK, HEALTH_WARN or HEALTH_ERR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<CephHealth>,
    /// The failing health checks, in short (at most a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
    /// Raw capacity of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}
