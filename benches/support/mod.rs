//! What the benchmark binaries share: a child process killed on drop,
//! free ports, and the runtime they run on.

use std::process::Child;

/// A Herald or Alertmanager process with its scratch directory, killed on
/// drop.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a bench's body on the two worker threads the benches compare on.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Herald binary a bench runs: this build's, or the one
/// `HERALD_BENCH_BIN` names, so that an older build can be measured by the
/// same bench in the same run (the "before" column of a change).
pub fn herald_bin() -> std::path::PathBuf {
    std::env::var_os("HERALD_BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_herald").into())
}

/// The reference Alertmanager (0.33.1 from Debian's sid suite) that
/// `scripts/reference.sh` unpacks, run through its wrapper.
pub fn reference_alertmanager() -> std::path::PathBuf {
    let root = std::env::var_os("HERALD_AM_CURRENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/am-current")
        });
    let bin = root.join("bin/alertmanager");
    assert!(
        bin.exists(),
        "{} missing: run scripts/reference.sh",
        bin.display()
    );
    bin
}
