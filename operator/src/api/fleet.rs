//! DovecotFleet: Dovecot servers (a StatefulSet) that serve the mail of one MailPool.

// kube's `printcolumn(...)` repeats `name`/`type_` keys, which clippy mistakes for duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CONFIG_KEY_PATTERN, DNS_SUBDOMAIN_PATTERN, LocalRef};

/// Desired state of a DovecotFleet.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mail.rbox.io",
    version = "v1alpha1",
    kind = "DovecotFleet",
    plural = "dovecotfleets",
    shortname = "dfleet",
    category = "rbox",
    namespaced,
    status = "DovecotFleetStatus",
    derive = "PartialEq",
    doc = "Dovecot servers that serve the mail of one MailPool: a StatefulSet with a generated dovecot.conf (rbox storage plugin), Services for IMAP/POP3/LMTP/submission and a PodDisruptionBudget.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.poolRef.name"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.image",
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
        "rule": "!has(self.indexStorage.emptyDir) || self.replicas <= 1 || self.acknowledgeEphemeralIndex",
        "fieldPath": ".indexStorage.emptyDir",
        "message": "indexStorage.emptyDir with more than one replica loses Dovecot's index state (UIDs, flags, caches) whenever a user's session lands on another pod: use indexStorage.persistentVolumeClaim (a shared ReadWriteMany volume such as CephFS) or set acknowledgeEphemeralIndex: true"
    }
]))]
pub struct DovecotFleetSpec {
    /// The MailPool (same namespace) whose mail this fleet serves. Immutable.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "poolRef is immutable: a DovecotFleet cannot move to another MailPool; create a new DovecotFleet"}
    ]))]
    pub pool_ref: LocalRef,
    /// Container image with Dovecot 2.3 and the rbox storage plugin (`lib10_storage_rbox_plugin`).
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^\S+$"))]
    pub image: String,
    /// When the kubelet pulls `image`: Always, IfNotPresent or Never. Default: Kubernetes'
    /// (Always for `:latest`, otherwise IfNotPresent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Secrets (same namespace) used to pull `image` from a private registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Number of Dovecot pods.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// CPU and memory of the Dovecot container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Which mail protocols Dovecot serves, and on which ports. IMAP and LMTP are on by
    /// default; POP3 and submission are off.
    #[serde(default)]
    pub protocols: Protocols,
    /// TLS: STARTTLS on the plain ports, plus implicit TLS on 993 (IMAPS) and 995 (POP3S) for
    /// the protocols that are enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// How users log in: exactly one of `passwdFile`, `ldap` or `sql`.
    pub auth: AuthSettings,
    /// Where Dovecot keeps its own index files (UIDs, flags, caches; mail bodies and the omap
    /// index live in Ceph): exactly one of `persistentVolumeClaim` or `emptyDir`.
    pub index_storage: IndexStorage,
    /// Accept `indexStorage.emptyDir` with more than one replica (index state is rebuilt
    /// whenever a user moves between pods: slower, UIDs may change for clients).
    #[serde(default)]
    pub acknowledge_ephemeral_index: bool,
    /// The non-root user and group that own mail processes and index files.
    #[serde(default)]
    pub mail_user: MailUser,
    /// Dovecot configuration appended after the generated `dovecot.conf` (so it can override
    /// it). Checked with `doveconf` before it is rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub extra_config: Option<String>,
    /// Where the pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<Scheduling>,
    /// The Service in front of the pods.
    #[serde(default)]
    pub service: ServiceSettings,
    /// Seconds a pod gets to drain (stop accepting, let sessions finish) before it is killed.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 3600))]
    pub termination_grace_period_seconds: i64,
}

fn default_replicas() -> i32 {
    2
}
fn default_grace() -> i64 {
    120
}

// `imagePullPolicy` of a container (no type doc: it would replace the field's description).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// One type per protocol, so each has its own defaults in the schema. (`serde(default = ..)`
/// takes a string literal, hence the function names are passed twice.)
macro_rules! protocol {
    ($name:ident, $what:literal, $enabled:literal, $port:literal, $enabled_fn:ident, $enabled_str:literal, $port_fn:ident, $port_str:literal) => {
        #[doc = concat!($what, ": whether it is served and on which port.")]
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[doc = concat!("Serve ", $what, " (default ", stringify!($enabled), ").")]
            #[serde(default = $enabled_str)]
            pub enabled: bool,
            #[doc = concat!("Port of the Service (default ", stringify!($port), "). Inside the pod Dovecot listens on a fixed unprivileged port that the Service maps this one onto.")]
            #[serde(default = $port_str)]
            #[schemars(range(min = 1, max = 65535))]
            pub port: i32,
        }

        fn $enabled_fn() -> bool {
            $enabled
        }
        fn $port_fn() -> i32 {
            $port
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    enabled: $enabled,
                    port: $port,
                }
            }
        }
    };
}

protocol!(
    ImapProtocol,
    "IMAP",
    true,
    143,
    imap_enabled,
    "imap_enabled",
    imap_port,
    "imap_port"
);
protocol!(
    Pop3Protocol,
    "POP3",
    false,
    110,
    pop3_enabled,
    "pop3_enabled",
    pop3_port,
    "pop3_port"
);
protocol!(
    LmtpProtocol,
    "LMTP (delivery from the MTA)",
    true,
    24,
    lmtp_enabled,
    "lmtp_enabled",
    lmtp_port,
    "lmtp_port"
);
protocol!(
    SubmissionProtocol,
    "Submission (needs submission_relay_host in extraConfig)",
    false,
    587,
    submission_enabled,
    "submission_enabled",
    submission_port,
    "submission_port"
);

/// The protocols Dovecot serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.imap.enabled || self.pop3.enabled || self.lmtp.enabled || self.submission.enabled",
        "message": "protocols: enable at least one of imap, pop3, lmtp or submission"
    },
    {
        "rule": "[self.imap.enabled ? self.imap.port : -1, self.pop3.enabled ? self.pop3.port : -2, self.lmtp.enabled ? self.lmtp.port : -3, self.submission.enabled ? self.submission.port : -4].all(a, [self.imap.enabled ? self.imap.port : -1, self.pop3.enabled ? self.pop3.port : -2, self.lmtp.enabled ? self.lmtp.port : -3, self.submission.enabled ? self.submission.port : -4].filter(b, b == a).size() == 1)",
        "message": "protocols: two enabled protocols use the same port"
    }
]))]
pub struct Protocols {
    /// IMAP (default on, port 143).
    #[serde(default)]
    pub imap: ImapProtocol,
    /// POP3 (default off, port 110).
    #[serde(default)]
    pub pop3: Pop3Protocol,
    /// LMTP, how the MTA delivers mail (default on, port 24).
    #[serde(default)]
    pub lmtp: LmtpProtocol,
    /// Submission (default off, port 587).
    #[serde(default)]
    pub submission: SubmissionProtocol,
}

/// TLS certificate and key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// A Secret of type `kubernetes.io/tls` (keys `tls.crt`, `tls.key`) in the same namespace,
    /// e.g. one cert-manager issues.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: String,
}

/// How Dovecot authenticates users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "[has(self.passwdFile), has(self.ldap), has(self.sql)].filter(x, x).size() == 1",
        "message": "auth: set exactly one of passwdFile, ldap or sql"
    }
]))]
pub struct AuthSettings {
    /// Users from a passwd-file (`user:{SCHEME}hash:uid:gid::home::`) kept in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwd_file: Option<PasswdFileAuth>,
    /// Users from LDAP: a Secret key holding a complete `dovecot-ldap.conf.ext` (uris, dn,
    /// dnpass, base, filters), used as passdb and userdb args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapAuth>,
    /// Users from SQL: a Secret key holding a complete `dovecot-sql.conf.ext` (driver, connect,
    /// password_query, user_query), used as passdb and userdb args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlAuth>,
}

/// One type per auth source, so each has its own default key in the schema.
macro_rules! secret_file {
    ($name:ident, $what:literal, $key:literal, $key_fn:ident, $key_str:literal) => {
        #[doc = concat!($what, ", kept in a Secret and mounted read-only into the pods.")]
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// Name of the Secret, in the same namespace.
            #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
            pub secret_name: String,
            #[doc = concat!("Key of the file inside the Secret (default `", $key, "`).")]
            #[serde(default = $key_str)]
            #[schemars(length(min = 1, max = 253), regex(pattern = CONFIG_KEY_PATTERN))]
            pub key: String,
        }

        fn $key_fn() -> String {
            $key.into()
        }
    };
}

secret_file!(
    PasswdFileAuth,
    "A passwd-file",
    "passwd",
    passwd_key,
    "passwd_key"
);
secret_file!(
    LdapAuth,
    "A dovecot-ldap.conf.ext",
    "dovecot-ldap.conf.ext",
    ldap_key,
    "ldap_key"
);
secret_file!(
    SqlAuth,
    "A dovecot-sql.conf.ext",
    "dovecot-sql.conf.ext",
    sql_key,
    "sql_key"
);

/// Where Dovecot's own index files live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.persistentVolumeClaim) != has(self.emptyDir)",
        "message": "indexStorage: set exactly one of persistentVolumeClaim or emptyDir"
    }
]))]
pub struct IndexStorage {
    /// An existing ReadWriteMany claim (e.g. CephFS) shared by all pods, so a user's index is
    /// the same whichever pod serves them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcIndexStorage>,
    /// A per-pod scratch volume: index state is lost when the pod goes. Fine for one replica
    /// or tests; with more replicas it needs `acknowledgeEphemeralIndex: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirIndexStorage>,
}

/// A shared claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcIndexStorage {
    /// Name of the PersistentVolumeClaim in the same namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub claim_name: String,
}

/// A per-pod scratch volume.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDirIndexStorage {
    /// Upper bound of the volume, e.g. `10Gi`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "isQuantity(string(self)) && quantity(string(self)).isGreaterThan(quantity('0'))", "message": "emptyDir.sizeLimit must be a positive quantity such as 10Gi"}
    ]))]
    pub size_limit: Option<Quantity>,
}

/// The user and group of mail processes (never root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailUser {
    /// Numeric user id (not 0).
    #[serde(default = "default_mail_id")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub uid: i64,
    /// Numeric group id (not 0).
    #[serde(default = "default_mail_id")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub gid: i64,
}

fn default_mail_id() -> i64 {
    5000
}

impl Default for MailUser {
    fn default() -> Self {
        Self {
            uid: 5000,
            gid: 5000,
        }
    }
}

/// Pod placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// Only nodes with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Node and pod (anti-)affinity. Default: the operator prefers spreading pods across nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// How pods spread across zones or nodes (passed to the pods as written: give each
    /// constraint a label selector matching the fleet's pods, e.g.
    /// `app.kubernetes.io/instance: <fleet name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub priority_class_name: Option<String>,
}

/// The Service in front of the pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    /// ClusterIP (default), NodePort or LoadBalancer.
    #[serde(rename = "type", default)]
    pub type_: ServiceType,
    /// Annotations of the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Observed state of a DovecotFleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DovecotFleetStatus {
    /// Pods that exist (from the StatefulSet).
    #[serde(default)]
    pub replicas: i32,
    /// Pods that pass their readiness check.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods running the current configuration and image.
    #[serde(default)]
    pub updated_replicas: i32,
    /// StatefulSet revision of the older pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// StatefulSet revision being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Hash of the generated Dovecot configuration (a change rolls the pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// `Available`, `Progressing`, `Degraded` (see `rbox_operator::api::conditions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
