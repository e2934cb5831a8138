//! Herald: a drop-in replacement for the Prometheus Alertmanager.
//!
//! Modules are cut the way Alertmanager's Go packages are, so a reader who
//! knows one finds the concept here under the same name. See ARCHITECTURE.md.

mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod commoncfg;
pub mod config;
pub mod dispatch;
pub mod duration;
pub mod gojson;
pub mod inhibit;
pub mod log;
pub mod matcher;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod nflog;
pub mod notify;
mod query;
pub mod server;
pub mod silence;
pub mod storage;
pub mod store;
pub mod tasks;
pub mod template;
pub mod timeinterval;
pub mod tls;
mod ui;
pub mod web;
