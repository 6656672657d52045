//! The controllers and what they share.

pub mod connections;
