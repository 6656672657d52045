//! Backend errors, classified by the errno RADOS returned.

use thiserror::Error;

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// ENOENT: object, pool or key does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// EEXIST: exclusive create of an existing object.
    #[error("already exists: {0}")]
    Exists(String),
    /// ECANCELED: a compare guard (cmpxattr / omap_cmp) failed; nothing was written.
    #[error("compare failed, nothing written: {0}")]
    Canceled(String),
    /// ETIMEDOUT or our own deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// EFBIG / E2BIG / EINVAL for a size the cluster refuses.
    #[error("too large: {0}")]
    TooLarge(String),
    /// EACCES / EPERM: cephx caps do not allow this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// ENOSPC / EDQUOT: pool quota or cluster full.
    #[error("no space (quota or full): {0}")]
    NoSpace(String),
    /// Could not reach or authenticate to the cluster.
    #[error("connection: {0}")]
    Connection(String),
    /// Anything else, with the raw (negative) errno.
    #[error("rados error {errno}: {context}")]
    Other { errno: i32, context: String },
}

impl BackendError {
    /// Map a negative librados return code to an error, with context for the message.
    pub fn from_errno(rc: i32, context: impl Into<String>) -> Self {
        let context = context.into();
        match -rc {
            libc::ENOENT => Self::NotFound(context),
            libc::EEXIST => Self::Exists(context),
            libc::ECANCELED => Self::Canceled(context),
            libc::ETIMEDOUT => Self::Timeout(context),
            libc::EFBIG | libc::E2BIG => Self::TooLarge(context),
            libc::EACCES | libc::EPERM => Self::PermissionDenied(context),
            libc::ENOSPC | libc::EDQUOT => Self::NoSpace(context),
            _ => Self::Other { errno: rc, context },
        }
    }

    /// The negative errno this error stands for (for logs and exit codes).
    pub fn errno(&self) -> i32 {
        match self {
            Self::NotFound(_) => -libc::ENOENT,
            Self::Exists(_) => -libc::EEXIST,
            Self::Canceled(_) => -libc::ECANCELED,
            Self::Timeout(_) => -libc::ETIMEDOUT,
            Self::TooLarge(_) => -libc::EFBIG,
            Self::PermissionDenied(_) => -libc::EACCES,
            Self::NoSpace(_) => -libc::ENOSPC,
            Self::Connection(_) => -libc::ENOTCONN,
            Self::Other { errno, .. } => *errno,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// Worth retrying (bounded): the cluster was slow or briefly unreachable.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connection(_))
    }
}
