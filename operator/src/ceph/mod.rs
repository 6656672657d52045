//! Ceph administration through librados `mon_command`: pools, CRUSH rules, EC profiles,
//! cephx users. Desired state is built purely; apply reads before it writes.
//!
//! - [`mon`]: the [`mon::MonClient`] trait (librados in production, [`fake::FakeMon`] in unit
//!   tests) and [`mon::Admin`], which times every call and counts writes.
//! - [`command`]: the mon commands as JSON, each marked read or write.
//! - [`observe`]: what Ceph has now (pools, rules, profiles, users, usage), parsed.
//! - [`pool`]: a desired pool and the pure planner turning (desired, observed) into commands;
//!   an empty plan when nothing differs is how steady state writes nothing.
//! - [`user`]: the Dovecot cephx user (caps, creation, rotation).
//! - [`delete`]: the deletion guard (is there mail?) and the delete plan.

pub mod command;
pub mod delete;
pub mod error;
pub mod fake;
pub mod mon;
pub mod observe;
pub mod pool;
pub mod user;

pub use command::MonCmd;
pub use error::CephError;
pub use mon::{Admin, MonClient};

/// The application tag on every pool the operator manages.
pub const APPLICATION: &str = "rbox";
