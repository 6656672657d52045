//! What a command can fail with, and the exit code each failure maps to.

use thiserror::Error;

use crate::StoreError;
use crate::backend::BackendError;
use crate::format::cfg::CfgError;

/// Exit codes of `rbox` (documented in `docs/rbox-cli.md`; stable for scripts).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other error (Ceph error, I/O, corrupt data that stops the command).
    pub const ERROR: u8 = 1;
    /// Bad command line or invalid input (unknown option, bad query, bad cfg key, bad user name).
    pub const USAGE: u8 = 2;
    /// fsck found problems that are still there (not repaired, or repair not asked for).
    pub const FINDINGS: u8 = 3;
    /// A destructive action was refused because its confirmation flag was missing.
    pub const NOT_CONFIRMED: u8 = 4;
    /// What was asked for does not exist (mail, mailbox, pool, user mapping, cfg object).
    pub const NOT_FOUND: u8 = 5;
    /// The cluster could not be reached, refused us, or did not answer in time.
    pub const UNAVAILABLE: u8 = 6;
}

/// The text `rbox --help` shows about exit codes.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  success
  1  error (Ceph error, I/O, corrupt data)
  2  usage: bad option, query, cfg key, user name or other input
  3  fsck: problems found and not (all) repaired
  4  destructive action refused: confirmation flag missing
  5  not found: mail, mailbox, pool, user mapping or cfg object
  6  cluster unreachable, permission denied or timed out";

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotConfirmed(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

impl From<BackendError> for CliError {
    fn from(e: BackendError) -> Self {
        CliError::Store(e.into())
    }
}

impl From<CfgError> for CliError {
    fn from(e: CfgError) -> Self {
        CliError::Store(e.into())
    }
}

fn backend_code(e: &BackendError) -> u8 {
    match e {
        BackendError::NotFound(_) => exit::NOT_FOUND,
        BackendError::Timeout(_)
        | BackendError::Connection(_)
        | BackendError::PermissionDenied(_) => exit::UNAVAILABLE,
        _ => exit::ERROR,
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::NotConfirmed(_) => exit::NOT_CONFIRMED,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Io(_) | CliError::Other(_) => exit::ERROR,
            CliError::Store(e) => match e {
                StoreError::Backend(b) => backend_code(b),
                StoreError::Invalid(_) | StoreError::Namespace(_) => exit::USAGE,
                // Refused updates are usage errors; a malformed object in the pool is not.
                StoreError::Cfg(
                    CfgError::UnknownKey(_)
                    | CfgError::BadValue { .. }
                    | CfgError::BadUpdateSyntax(_),
                ) => exit::USAGE,
                StoreError::MailNotFound(_)
                | StoreError::MailboxNotFound(_)
                | StoreError::UserMappingMissing(_) => exit::NOT_FOUND,
                _ => exit::ERROR,
            },
        }
    }

    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        CliError::Io(format!("{what}: {e}"))
    }
}

pub type CliResult<T> = std::result::Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_documented_codes() {
        let nf = CliError::from(StoreError::MailNotFound("x".into()));
        assert_eq!(nf.exit_code(), exit::NOT_FOUND);
        let t = CliError::from(BackendError::Timeout("mon".into()));
        assert_eq!(t.exit_code(), exit::UNAVAILABLE);
        let k = CliError::from(CfgError::UnknownKey("nope".into()));
        assert_eq!(k.exit_code(), exit::USAGE);
        let j = CliError::from(CfgError::Json("eof".into()));
        assert_eq!(j.exit_code(), exit::ERROR);
        assert_eq!(
            CliError::NotConfirmed("x".into()).exit_code(),
            exit::NOT_CONFIRMED
        );
        assert_eq!(
            CliError::from(StoreError::Invalid("q".into())).exit_code(),
            exit::USAGE
        );
    }
}
