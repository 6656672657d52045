//! Errors of the Ceph admin layer, each with a category for metrics and Events.

use rbox_core::backend::BackendError;

use crate::runtime::ErrorCategory;

#[derive(Debug, thiserror::Error)]
pub enum CephError {
    /// Monitors did not answer in time, or the connection is gone.
    #[error("ceph unreachable: {0}")]
    Unreachable(String),
    /// The operator's cephx user lacks a cap.
    #[error("ceph refused (missing cap?): {0}")]
    PermissionDenied(String),
    /// A monitor command failed; `message` is the monitor's own status text.
    #[error("ceph command '{prefix}' failed ({errno}): {message}")]
    Command {
        prefix: String,
        errno: i32,
        message: String,
    },
    /// A reply we could not understand (Ceph version mismatch?).
    #[error("unexpected reply to '{prefix}': {message}")]
    Parse { prefix: String, message: String },
    /// An existing pool, rule or profile differs from the spec in a way the operator will
    /// not change (it would move or lose data): nothing was changed.
    #[error("{what} cannot be adopted: {why}")]
    Incompatible { what: String, why: String },
}

impl CephError {
    pub(crate) fn from_backend(prefix: &str, e: BackendError) -> Self {
        match e {
            BackendError::Timeout(m) | BackendError::Connection(m) => Self::Unreachable(m),
            BackendError::PermissionDenied(m) => Self::PermissionDenied(m),
            BackendError::NotFound(m) => Self::Command {
                prefix: prefix.into(),
                errno: -ENOENT,
                message: m,
            },
            BackendError::Exists(m) => Self::Command {
                prefix: prefix.into(),
                errno: -17, // EEXIST
                message: m,
            },
            other => Self::Command {
                prefix: prefix.into(),
                errno: match &other {
                    BackendError::Other { errno, .. } => *errno,
                    _ => -5,
                },
                message: other.to_string(),
            },
        }
    }

    /// Did the command fail because its target does not exist (ENOENT)?
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Command { errno, .. } if *errno == -ENOENT)
    }
}

/// POSIX ENOENT (the operator crate does not link libc for one constant).
const ENOENT: i32 = 2;

impl ErrorCategory for CephError {
    fn category(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "ceph_unreachable",
            Self::PermissionDenied(_) => "ceph_permission",
            Self::Command { .. } => "ceph_command",
            Self::Parse { .. } => "ceph_reply",
            Self::Incompatible { .. } => "ceph_incompatible",
        }
    }
}
