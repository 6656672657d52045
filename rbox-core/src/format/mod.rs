//! librmb's on-RADOS format, byte for byte (pure code, no I/O).
//!
//! - [`guid`]: Dovecot-style 128-bit GUIDs (object ids, mail and mailbox GUIDs).
//! - [`flags`]: IMAP system flags and the flags-byte quirk of `F`/`C`.
//! - [`metadata`]: the single-letter xattrs of a mail object, keywords, the `ima` module.
//! - [`cfg`]: the `rbox_cfg` JSON object.
//! - [`namespace`]: user namespaces and user-mapping objects.
//! - [`recovery_index`]: the `oid,` recovery index object.
//! - [`query`]: the `rmb ls` query language and sort keys.
//! - [`date`]: `YYYY-MM-DD HH:MM:SS` ↔ Unix seconds.

pub mod cfg;
pub mod date;
pub mod flags;
pub mod guid;
pub mod metadata;
pub mod namespace;
pub mod query;
pub mod recovery_index;

pub use cfg::{CfgError, MetadataStorage, RboxConfig};
pub use flags::{FlagsByte, MailFlags};
pub use guid::{Guid128, MailGuid};
pub use metadata::{MailMetadata, MetadataError, MetadataKey};
pub use namespace::NamespaceError;
pub use query::{Query, QueryError, SortKey};
