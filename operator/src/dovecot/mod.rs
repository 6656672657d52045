//! Dovecot: the generated `dovecot.conf` (rbox plugin) and its check with `doveconf`.
//!
//! Pure rendering from a plain [`config::FleetConfig`] (no Kubernetes types), the other files
//! of a fleet's ConfigMap, and the doveconf check used by tests and by the controller.

pub mod config;
pub mod doveconf;
pub mod files;

#[cfg(test)]
mod tests;
