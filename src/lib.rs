//! Herald: a drop-in replacement for the Prometheus Alertmanager.
//!
//! Modules are cut the way Alertmanager's Go packages are, so a reader who
//! knows one finds the concept here under the same name. See ARCHITECTURE.md.

mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
mod commoncfg;
pub mod config;
pub mod dispatch;
mod duration;
mod gojson;
mod inhibit;
mod limit;
pub mod log;
pub mod matcher;
mod metrics;
mod migrate;
pub mod model;
mod nflog;
pub mod notify;
mod query;
pub mod server;
pub mod silence;
mod storage;
mod store;
pub mod tasks;
pub mod template;
mod timeinterval;
mod tls;
mod ui;
pub mod web;
