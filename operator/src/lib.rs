//! rbox-operator as a library: the binary (`main.rs`) only parses the command line.
//! Register new modules here, not in `main.rs`.

pub mod controllers;
pub mod k8s;
pub mod run;
pub mod runtime;
