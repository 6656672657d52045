//! rbox-core errors → the status codes of the C ABI (the C layer turns them into
//! Dovecot's MAIL_ERROR_* and so the IMAP response codes).

use rbox_core::backend::BackendError;
use rbox_core::error::StoreError;

use crate::abi::*;

pub fn of_backend(e: &BackendError) -> i32 {
    match e {
        BackendError::NotFound(_) => RBOX_RS_ERR_NOTFOUND,
        BackendError::TooLarge(_) => RBOX_RS_ERR_TOO_LARGE,
        BackendError::NoSpace(_) => RBOX_RS_ERR_NOSPACE,
        BackendError::PermissionDenied(_) => RBOX_RS_ERR_PERM,
        BackendError::Other { errno, .. } if *errno == -libc::EDQUOT => RBOX_RS_ERR_NOSPACE,
        _ => RBOX_RS_ERR_TEMP,
    }
}

pub fn of_store(e: &StoreError) -> i32 {
    match e {
        StoreError::Backend(b) | StoreError::IndexWriteFailed { error: b, .. } => of_backend(b),
        StoreError::MailNotFound(_) | StoreError::ZeroByte(_) => RBOX_RS_ERR_NOTFOUND,
        StoreError::TooLarge { .. } => RBOX_RS_ERR_TOO_LARGE,
        StoreError::Metadata { .. } | StoreError::IndexFormat { .. } | StoreError::Cfg(_) => {
            RBOX_RS_ERR_CORRUPT
        }
        StoreError::Invalid(_) | StoreError::Namespace(_) => RBOX_RS_ERR_PARAMS,
        _ => RBOX_RS_ERR_TEMP,
    }
}
