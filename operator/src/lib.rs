//! rbox-operator as a library: the binary (`main.rs`) only parses the command line.
//! Register new modules here, not in `main.rs`.

pub mod api;
pub mod ceph;
pub mod controllers;
pub mod dovecot;
pub mod k8s;
pub mod run;
pub mod runtime;
