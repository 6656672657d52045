//! Errors of the storage API ([`crate::store`] and [`crate::index`]).

use thiserror::Error;

use crate::backend::BackendError;
use crate::format::cfg::CfgError;
use crate::format::metadata::MetadataError;
use crate::format::namespace::NamespaceError;
use crate::index::format::IndexFormatError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Error, Clone)]
pub enum StoreError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Cfg(#[from] CfgError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error("object {oid}: {error}")]
    Metadata { oid: String, error: MetadataError },
    #[error("index object {object}, key {key:?}: {error}")]
    IndexFormat {
        object: String,
        key: String,
        error: IndexFormatError,
    },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("mailbox {0:?} does not exist")]
    MailboxNotFound(String),
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    #[error("mailbox {name:?} is not empty ({mails} mails); pass force to expunge them")]
    MailboxNotEmpty { name: String, mails: u64 },
    #[error("mailbox {0:?} is being deleted")]
    MailboxDeleting(String),
    #[error("mail {0} does not exist")]
    MailNotFound(String),
    #[error("mail {0} is a zero-byte object: being written or expunged")]
    ZeroByte(String),
    #[error("mail {0} has no index entry (run fsck --repair or index)")]
    NotIndexed(String),
    #[error("mail of {size} bytes exceeds osd_max_object_size ({max} bytes); nothing was written")]
    TooLarge { size: u64, max: u64 },
    #[error("gave up after {attempts} attempts: {what} kept changing under us")]
    Conflict { what: String, attempts: u32 },
    #[error("mailbox {0:?} has used every UID; it needs a new UIDVALIDITY")]
    UidSpaceExhausted(String),
    #[error("user {0:?} has no mapping object (user_mapping=true)")]
    UserMappingMissing(String),
    #[error("user mapping is disabled in rbox_cfg (user_mapping=false)")]
    UserMappingDisabled,
    #[error("user {user:?} already maps to namespace {existing:?}")]
    UserMappingExists { user: String, existing: String },
    #[error("namespace {0:?} already has an omap index; use fsck --repair to reconcile it")]
    IndexExists(String),
    #[error(
        "namespace {namespace:?} holds mail written by the rbox plugin (e.g. object {oid}) but has \
         no omap index: run `rbox index` first; creating mailbox {mailbox:?} now would give it a \
         second GUID beside the plugin's"
    )]
    UnindexedMail {
        namespace: String,
        mailbox: String,
        oid: String,
    },
    #[error(
        "index write failed after the body of {oid} was written ({error}); fsck will reconcile it"
    )]
    IndexWriteFailed { oid: String, error: BackendError },
}

impl StoreError {
    pub(crate) fn index_format(
        object: impl Into<String>,
        key: impl Into<String>,
        error: IndexFormatError,
    ) -> Self {
        StoreError::IndexFormat {
            object: object.into(),
            key: key.into(),
            error,
        }
    }

    /// The backend error inside, if any (to classify NotFound, Timeout, …).
    pub fn backend(&self) -> Option<&BackendError> {
        match self {
            StoreError::Backend(e) | StoreError::IndexWriteFailed { error: e, .. } => Some(e),
            _ => None,
        }
    }
}
