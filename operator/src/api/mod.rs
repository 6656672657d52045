//! The API: `mail.rbox.io/v1alpha1` MailCluster, MailPool and DovecotFleet.
//!
//! The Rust types are the source of truth: `rbox-operator crd` prints the CRDs generated from
//! them (checked in under `crds/`, a test fails on drift), and `docs/api.md` is generated from
//! the same schema. Validation lives in the schema (patterns, ranges, enums, CEL rules) so the
//! API server rejects bad input before a controller sees it.

pub mod cluster;
pub mod common;
pub mod crd;
pub mod doc;
pub mod fleet;
pub mod pool;
#[cfg(test)]
mod schema_tests;

pub use cluster::{
    Capacity, CephConnection, CephHealth, CephTimeouts, ClusterPhase, ExternalCeph, HealthCheck,
    HealthSettings, KeyringSecretRef, MailCluster, MailClusterSpec, MailClusterStatus,
    MetadataStorage, RboxSettings, RookCeph,
};
pub use common::{GROUP, LocalRef, VERSION};
pub use fleet::{
    AuthSettings, DovecotFleet, DovecotFleetSpec, DovecotFleetStatus, EmptyDirIndexStorage,
    ImagePullPolicy, ImapProtocol, IndexStorage, LdapAuth, LmtpProtocol, MailUser, PasswdFileAuth,
    Pop3Protocol, Protocols, PvcIndexStorage, Scheduling, ServiceSettings, ServiceType, SqlAuth,
    SubmissionProtocol, TlsSettings,
};
pub use pool::{
    CONFIRM_DELETE_ANNOTATION, CanaryResult, CompressionAlgorithm, CompressionMode,
    CompressionSettings, ErasureCodedSettings, FailureDomain, MailPool, MailPoolSpec,
    MailPoolStatus, PoolPhase, PoolSettings, PoolStatus, QuotaSettings, ROTATE_KEY_ANNOTATION,
    ReclaimPolicy, ReplicatedSettings,
};

/// Condition types written by the controllers (`type` of a status condition).
pub mod conditions {
    /// MailCluster: the operator holds a working connection to Ceph.
    pub const CEPH_CONNECTED: &str = "CephConnected";
    /// MailCluster and MailPool: everything the object asks for exists and works.
    pub const READY: &str = "Ready";
    /// MailCluster and DovecotFleet: working, but something needs attention.
    pub const DEGRADED: &str = "Degraded";
    /// MailPool: both pools, their CRUSH rules, the cephx user and `rbox_cfg` exist as specified.
    pub const POOLS_READY: &str = "PoolsReady";
    /// MailPool: the last canary mail was saved, read, verified and deleted in time.
    pub const STORAGE_HEALTHY: &str = "StorageHealthy";
    /// MailPool: deletion waits (pool not empty, or the confirmation annotation is missing).
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
    /// DovecotFleet: at least one pod is ready (the Service has endpoints).
    pub const AVAILABLE: &str = "Available";
    /// DovecotFleet: a rollout or scale change is in progress.
    pub const PROGRESSING: &str = "Progressing";
}
