//! The error of the MailCluster and MailPool reconcilers, with a category per variant (the
//! metric label and the Event reason).

use std::time::Duration;

use crate::ceph::CephError;
use crate::k8s::apply::ApplyError;
use crate::runtime::ErrorCategory;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ceph(#[from] CephError),
    #[error(transparent)]
    Kube(#[from] ApplyError),
    /// The spec asks for something the operator will not do.
    #[error("invalid spec: {0}")]
    Invalid(String),
    /// The referenced MailCluster does not exist (yet).
    #[error("MailCluster {0} not found")]
    ClusterNotFound(String),
    /// The connection settings (Secret, Rook objects) are missing or malformed.
    #[error("connection settings: {0}")]
    Settings(String),
    /// Connecting to Ceph failed.
    #[error("connecting to Ceph: {0}")]
    Connect(String),
    /// rbox-core refused (rbox_cfg, canary).
    #[error("rbox: {0}")]
    Store(#[from] rbox_core::error::StoreError),
    /// Deletion waits for the user (confirmation) — retried quietly.
    #[error("deletion blocked: {0}")]
    DeletionBlocked(String),
    #[error("reconcile took longer than {0:?}")]
    Timeout(Duration),
    /// The object could not be parsed (kept out of the watch by a deserialize guard).
    #[error("malformed object: {0}")]
    Malformed(String),
}

impl ErrorCategory for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Ceph(e) => e.category(),
            Error::Kube(_) => "kubernetes",
            Error::Invalid(_) => "invalid_spec",
            Error::ClusterNotFound(_) => "cluster_not_found",
            Error::Settings(_) => "connection_settings",
            Error::Connect(_) => "ceph_unreachable",
            Error::Store(_) => "rbox",
            Error::DeletionBlocked(_) => "deletion_blocked",
            Error::Timeout(_) => "timeout",
            Error::Malformed(_) => "malformed_object",
        }
    }
}

impl Error {
    /// A CamelCase reason for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Ceph(CephError::Incompatible { .. }) => "IncompatiblePool",
            Error::Ceph(CephError::PermissionDenied(_)) => "CephPermissionDenied",
            Error::Ceph(CephError::Unreachable(_)) | Error::Connect(_) => "CephUnreachable",
            Error::Ceph(_) => "CephCommandFailed",
            Error::Kube(_) => "KubernetesError",
            Error::Invalid(_) => "InvalidSpec",
            Error::ClusterNotFound(_) => "ClusterNotFound",
            Error::Settings(_) => "ConnectionSettings",
            Error::Store(_) => "RboxError",
            Error::DeletionBlocked(_) => "DeletionBlocked",
            Error::Timeout(_) => "Timeout",
            Error::Malformed(_) => "MalformedObject",
        }
    }

    /// Does this error mean the connection should be rebuilt?
    pub fn is_connection_fault(&self) -> bool {
        matches!(
            self,
            Error::Ceph(CephError::Unreachable(_)) | Error::Connect(_)
        ) || matches!(
            self,
            Error::Store(rbox_core::error::StoreError::Backend(
                rbox_core::backend::BackendError::Timeout(_)
                    | rbox_core::backend::BackendError::Connection(_)
            ))
        )
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(ApplyError::Kube(e))
    }
}
