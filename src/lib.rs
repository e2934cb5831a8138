//! Herald: a drop-in replacement for the Prometheus Alertmanager.
//!
//! Modules are cut the way Alertmanager's Go packages are, so a reader who
//! knows one finds the concept here under the same name. See ARCHITECTURE.md.

/// The Alertmanager release whose behaviour Herald implements: what
/// `versionInfo.version` and `alertmanager_build_info` report, so that
/// amtool's version check (major.minor) compares against it. Herald's own
/// version is `CARGO_PKG_VERSION` (`--version`, `herald_build_info`, the UI).
pub const ALERTMANAGER_VERSION: &str = "0.34.0";

/// Herald's own build where Alertmanager puts its commit: `herald-<version>`,
/// and `-<revision>` when the build says which.
pub(crate) fn herald_revision() -> String {
    match option_env!("HERALD_REVISION") {
        Some(r) if !r.is_empty() => format!("herald-{}-{r}", env!("CARGO_PKG_VERSION")),
        _ => format!("herald-{}", env!("CARGO_PKG_VERSION")),
    }
}

mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
mod commoncfg;
pub mod config;
pub mod dispatch;
mod duration;
pub mod eventrecorder;
mod gojson;
pub mod history;
mod inhibit;
mod limit;
pub mod log;
pub mod matcher;
mod metrics;
mod migrate;
pub mod model;
mod nflog;
pub mod notify;
pub mod otel;
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
mod write_error;

/// What the randomized tests share.
#[cfg(test)]
mod testing {
    /// A xorshift generator: the randomized tests compare an optimised path
    /// with a plain one over many shapes, reproducibly (a failure replays
    /// from its seed).
    pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }
}
