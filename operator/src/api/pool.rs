//! MailPool: where mail lives in a MailCluster (a data pool for mail bodies and a replicated
//! index pool for omap), plus the cephx user, keyring Secret and ceph.conf ConfigMap Dovecot
//! uses to reach them.

// kube's `printcolumn(...)` repeats `name`/`type_` keys, which clippy mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEPHX_CLIENT_PATTERN, LocalRef};

/// Deleting a MailPool with `reclaimPolicy: Delete` destroys its Ceph pools only when this
/// annotation is present and its value equals the data pool's name (`spec.data.name`).
pub const CONFIRM_DELETE_ANNOTATION: &str = "mail.rbox.io/confirm-delete";
/// Changing this annotation's value (any value, e.g. a timestamp) makes the operator issue a new
/// key for the pool's Dovecot cephx user and update the keyring Secret.
pub const ROTATE_KEY_ANNOTATION: &str = "mail.rbox.io/rotate-key";

/// Pattern of a Ceph pool name the operator creates: no leading dot (reserved for Ceph's own
/// pools), no spaces or slashes.
pub const POOL_NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$";

/// Desired state of a MailPool.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mail.rbox.io",
    version = "v1alpha1",
    kind = "MailPool",
    plural = "mailpools",
    shortname = "mpool",
    category = "rbox",
    namespaced,
    status = "MailPoolStatus",
    derive = "PartialEq",
    doc = "Where mail lives in a MailCluster: a data pool for mail bodies (replicated or erasure-coded) and a replicated index pool for omap, plus the Dovecot cephx user, keyring Secret and ceph.conf ConfigMap that DovecotFleets mount.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(name = "Data", type_ = "string", json_path = ".spec.data.name"),
    printcolumn(name = "Index", type_ = "string", json_path = ".spec.index.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Used",
        type_ = "integer",
        json_path = ".status.dataPool.usedBytes",
        description = "Bytes stored in the data pool",
        priority = 1
    ),
    printcolumn(
        name = "Canary-ms",
        type_ = "integer",
        json_path = ".status.lastCanary.latencyMilliseconds",
        description = "Latency of the last canary mail (save, read, verify, delete)",
        priority = 1
    ),
    printcolumn(
        name = "Reclaim",
        type_ = "string",
        json_path = ".spec.reclaimPolicy",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.index.erasureCoded)",
        "fieldPath": ".index.erasureCoded",
        "reason": "FieldValueForbidden",
        "message": "the index pool must be replicated: omap (the mail index) does not exist on erasure-coded pools; use index.replicated"
    },
    {
        "rule": "self.data.name != self.index.name",
        "fieldPath": ".index.name",
        "message": "index.name must differ from data.name: mail bodies and the omap index live in two pools"
    }
]))]
pub struct MailPoolSpec {
    /// The MailCluster (same namespace) whose Ceph cluster holds these pools. Immutable.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "clusterRef is immutable: a MailPool cannot move to another MailCluster; create a new MailPool"}
    ]))]
    pub cluster_ref: LocalRef,
    /// The pool for mail bodies: one immutable RADOS object per mail, so erasure coding (e.g.
    /// k=4, m=2 on HDDs) is the usual choice at scale.
    pub data: PoolSettings,
    /// The pool for the omap mail index (mailbox lists, UID maps, flags). Must be replicated;
    /// put it on fast devices (`deviceClass: ssd`).
    pub index: PoolSettings,
    /// What deleting the MailPool does to its Ceph pools: `Retain` (default) keeps them and all
    /// mail; `Delete` destroys both pools, but only if the MailPool also carries the annotation
    /// `mail.rbox.io/confirm-delete` whose value is the data pool's name. Pools the operator
    /// adopted (they existed before) are never deleted. Until then the MailPool reports
    /// `DeletionBlocked`.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
    /// The cephx user Dovecot connects as, e.g. `client.mail-eu1`. Its caps are limited to
    /// this MailPool's two pools. Default: derived by the operator from the namespace and name
    /// (`status.dovecotUser` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 8, max = 128),
        regex(pattern = CEPHX_CLIENT_PATTERN),
        extend("x-kubernetes-validations" = [
            {"rule": "self != 'client.admin'", "message": "dovecotUser must not be client.admin: Dovecot gets its own user with caps limited to this MailPool's pools"}
        ])
    )]
    pub dovecot_user: Option<String>,
}

/// What happens to the Ceph pools when the MailPool is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReclaimPolicy {
    /// Keep the pools and every mail in them.
    #[default]
    Retain,
    /// Delete the pools (needs the confirmation annotation too).
    Delete,
}

/// One Ceph pool: name, redundancy, placement, compression, quota and PG hints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.replicated) != has(self.erasureCoded)",
        "message": "set exactly one of replicated or erasureCoded"
    },
    {
        "rule": "has(self.erasureCoded) == has(oldSelf.erasureCoded)",
        "message": "a pool cannot switch between replicated and erasureCoded: Ceph cannot convert an existing pool; create a new MailPool"
    },
    {
        "rule": "(has(self.deviceClass) ? self.deviceClass : '') == (has(oldSelf.deviceClass) ? oldSelf.deviceClass : '')",
        "fieldPath": ".deviceClass",
        "message": "deviceClass is immutable: changing CRUSH placement moves every object of the pool; create a new MailPool"
    }
]))]
pub struct PoolSettings {
    /// Ceph pool name: letters, digits, `_`, `.`, `-`; not starting with `.`. If the pool
    /// exists it is adopted (never deleted by the operator). Immutable.
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = POOL_NAME_PATTERN),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "pool name is immutable: the operator would create a second pool and leave the mail in the first; create a new MailPool"}
        ])
    )]
    pub name: String,
    /// Keep `size` full copies of every object. Exclusive with `erasureCoded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<ReplicatedSettings>,
    /// Split every object into `k` data and `m` coding chunks (survives `m` failures at
    /// (k+m)/k raw overhead). Only for the data pool. Exclusive with `replicated`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "erasureCoded is immutable: Ceph cannot change k, m or the profile of an existing pool"}
    ]))]
    pub erasure_coded: Option<ErasureCodedSettings>,
    /// Restrict the pool to OSDs of this device class (e.g. `hdd`, `ssd`, `nvme`). Default:
    /// any class. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub device_class: Option<String>,
    /// CRUSH bucket type across which copies (or chunks) are spread. `host` survives the loss
    /// of a whole server; `osd` is only for single-host test clusters. Immutable.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "failureDomain is immutable: changing CRUSH placement moves every object of the pool; create a new MailPool"}
    ]))]
    pub failure_domain: FailureDomain,
    /// CRUSH root bucket the pool's rule starts from. Immutable.
    #[serde(default = "default_crush_root")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_.-]+$"),
        extend("x-kubernetes-validations" = [
            {"rule": "self == oldSelf", "message": "crushRoot is immutable: changing CRUSH placement moves every object of the pool; create a new MailPool"}
        ])
    )]
    pub crush_root: String,
    /// BlueStore compression of this pool's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionSettings>,
    /// Pool quota (`ceph osd pool set-quota`); Ceph refuses writes once it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSettings>,
    /// Lower bound for the PG autoscaler (`pg_num_min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub pg_num_min: Option<u32>,
    /// Expected share of the cluster's capacity, a hint for the PG autoscaler
    /// (`target_size_ratio`); 0 clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub target_size_ratio: Option<f64>,
    /// Tell the PG autoscaler the pool will be large (`bulk`): start with many PGs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<bool>,
    /// Other pool properties passed to `ceph osd pool set <pool> <key> <value>` (e.g.
    /// `pg_autoscale_mode: "warn"`, `nodelete: "true"`). Keys the typed fields own are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(
        extend("maxProperties" = 32),
        extend("x-kubernetes-validations" = [
            {"rule": "self.all(k, k.matches('^[a-z0-9_]{1,64}$'))", "message": "parameters keys must be Ceph pool properties: lower-case letters, digits and _ (at most 64)"},
            {"rule": "self.all(k, !(k in ['size', 'min_size', 'crush_rule', 'erasure_code_profile', 'pg_num_min', 'target_size_ratio', 'bulk', 'compression_mode', 'compression_algorithm']))", "message": "parameters must not set size, min_size, crush_rule, erasure_code_profile, pg_num_min, target_size_ratio, bulk, compression_mode or compression_algorithm: use the typed fields"}
        ])
    )]
    pub parameters: BTreeMap<String, String>,
}

fn default_crush_root() -> String {
    "default".into()
}

/// Replication settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.minSize) || self.minSize <= self.size",
        "fieldPath": ".minSize",
        "message": "replicated.minSize must not exceed replicated.size"
    },
    {
        "rule": "self.size != 1 || self.allowSizeOne",
        "fieldPath": ".size",
        "message": "replicated.size 1 keeps a single copy of every mail (one failed disk loses mail): set replicated.allowSizeOne: true to accept that (test clusters only)"
    }
]))]
pub struct ReplicatedSettings {
    /// Copies of every object.
    #[serde(default = "default_size")]
    #[schemars(range(min = 1, max = 10))]
    pub size: u32,
    /// Copies that must be available for I/O (`min_size`). Default: Ceph's (size - size/2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub min_size: Option<u32>,
    /// Permit `size: 1` (no redundancy). Also needs `mon_allow_pool_size_one` in Ceph.
    #[serde(default)]
    pub allow_size_one: bool,
}

fn default_size() -> u32 {
    3
}

/// Erasure-coding settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureCodedSettings {
    /// Data chunks per object (at least 2).
    #[schemars(range(min = 2, max = 32))]
    pub k: u32,
    /// Coding chunks per object: how many failure domains may fail (at least 1).
    #[schemars(range(min = 1, max = 16))]
    pub m: u32,
    /// Name of the erasure-code profile. Default: derived from the pool name. An existing
    /// profile of that name must have the same k, m and failure domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    )]
    pub profile_name: Option<String>,
}

/// A CRUSH bucket type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureDomain {
    Osd,
    #[default]
    Host,
    Chassis,
    Rack,
    Row,
    Pdu,
    Pod,
    Room,
    Datacenter,
    Zone,
    Region,
}

impl FailureDomain {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureDomain::Osd => "osd",
            FailureDomain::Host => "host",
            FailureDomain::Chassis => "chassis",
            FailureDomain::Rack => "rack",
            FailureDomain::Row => "row",
            FailureDomain::Pdu => "pdu",
            FailureDomain::Pod => "pod",
            FailureDomain::Room => "room",
            FailureDomain::Datacenter => "datacenter",
            FailureDomain::Zone => "zone",
            FailureDomain::Region => "region",
        }
    }
}

/// BlueStore compression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompressionSettings {
    /// `none`, `passive` (compress when the client hints it), `aggressive` (unless the client
    /// hints otherwise) or `force`.
    #[serde(default)]
    pub mode: CompressionMode,
    /// Algorithm; default: the OSDs' `bluestore_compression_algorithm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<CompressionAlgorithm>,
}

/// `compression_mode` of a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompressionMode {
    #[default]
    None,
    Passive,
    Aggressive,
    Force,
}

impl CompressionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionMode::None => "none",
            CompressionMode::Passive => "passive",
            CompressionMode::Aggressive => "aggressive",
            CompressionMode::Force => "force",
        }
    }
}

// `compression_algorithm` of a pool (no type doc: it would replace the field's description).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompressionAlgorithm {
    Snappy,
    Zlib,
    Zstd,
    Lz4,
}

impl CompressionAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionAlgorithm::Snappy => "snappy",
            CompressionAlgorithm::Zlib => "zlib",
            CompressionAlgorithm::Zstd => "zstd",
            CompressionAlgorithm::Lz4 => "lz4",
        }
    }
}

/// A pool quota. 0 (or absent) means no limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSettings {
    /// Maximum bytes stored in the pool (before replication), as a quantity: `500Gi`, `2Ti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "isQuantity(string(self)) && !quantity(string(self)).isLessThan(quantity('0'))", "message": "quota.maxBytes must be a non-negative quantity such as 500Gi or 2Ti (0 = no limit)"}
    ]))]
    pub max_bytes: Option<Quantity>,
    /// Maximum number of objects (mails) in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_objects: Option<u64>,
}

// Lifecycle of a MailPool (documented on `MailPoolStatus::phase`: a type doc here would
// replace the field's description in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PoolPhase {
    // Waiting for the MailCluster to connect.
    Pending,
    // Creating pools, rules, the cephx user or rbox_cfg.
    Creating,
    // Pools exist and the last canary succeeded.
    Ready,
    // Pools exist but the canary or Ceph reports a problem.
    Degraded,
    // Being deleted.
    Deleting,
    // Deletion waits: the pool is not empty, or the confirmation annotation is missing.
    DeletionBlocked,
    // The spec cannot work (e.g. an existing pool conflicts with it); see the conditions.
    Failed,
}

/// What the operator observed of one Ceph pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    /// Ceph pool name.
    pub name: String,
    /// Ceph pool id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The pool existed before this MailPool: it is used but never deleted by the operator.
    #[serde(default)]
    pub adopted: bool,
    /// Bytes stored (before replication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    /// Objects stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Quota in bytes (0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_max_bytes: Option<u64>,
    /// Quota in objects (0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_max_objects: Option<u64>,
    /// Number of PGs per state, e.g. `active+clean: 32`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pg_states: BTreeMap<String, u32>,
    /// Free-form `parameters` the operator set on this pool, each with the value it had
    /// before ("" = it was unset), so a parameter removed from the spec is put back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub managed_parameters: BTreeMap<String, String>,
    /// Objects in the index pool whose omap exceeds Ceph's large-omap threshold (reported by
    /// deep scrub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_omap_objects: Option<u64>,
}

/// The last canary: save, read, verify and delete one real mail through rbox-core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryResult {
    /// When the canary finished.
    pub time: Time,
    /// How long it took, in milliseconds.
    pub latency_milliseconds: u64,
    /// Whether every step succeeded.
    pub ok: bool,
    /// What failed, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a MailPool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailPoolStatus {
    /// `PoolsReady`, `StorageHealthy`, `DeletionBlocked`, `Ready` (see
    /// `rbox_operator::api::conditions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Pending` (waiting for the MailCluster), `Creating` (pools, rules, user or rbox_cfg being
    /// made), `Ready` (pools exist, last canary succeeded), `Degraded` (canary or Ceph reports a
    /// problem), `Deleting`, `DeletionBlocked` (pool not empty or confirmation annotation
    /// missing) or `Failed` (the spec cannot work; see the conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PoolPhase>,
    /// The data pool as observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_pool: Option<PoolStatus>,
    /// The index pool as observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_pool: Option<PoolStatus>,
    /// The cephx user Dovecot connects as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dovecot_user: Option<String>,
    /// Name of the Secret holding that user's keyring (key `keyring`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring_secret: Option<String>,
    /// Name of the ConfigMap holding the `ceph.conf` Dovecot uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceph_config_map: Option<String>,
    /// The last canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_canary: Option<CanaryResult>,
    /// The value of the `mail.rbox.io/rotate-key` annotation the last key rotation answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotation: Option<String>,
}
