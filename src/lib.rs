//! Herald: a drop-in replacement for the Prometheus Alertmanager.
//!
//! Modules are cut the way Alertmanager's Go packages are, so a reader who
//! knows one finds the concept here under the same name. See ARCHITECTURE.md.

pub mod config;
pub mod duration;
pub mod matcher;
pub mod model;
