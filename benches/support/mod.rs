//! What the benchmark binaries share: a child process killed on drop,
//! free ports, and the runtime they run on.

use std::future::Future;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// Runs `job(0)`, `job(1)`, … `job(jobs - 1)` with `in_flight` of them
/// under way at any time, as a client with that many connections would:
/// the shape of every load the benches generate.
#[allow(dead_code)] // `ha_soak` generates no such load
pub async fn in_flight<F, Fut>(jobs: usize, in_flight: usize, job: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    job(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a load task panicked");
    }
}
