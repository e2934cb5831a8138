//! What the benchmark binaries share: a child process killed on drop,
//! free ports, and the runtime they run on.

use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Herald or Alertmanager process with its scratch directory, killed on
/// drop.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

impl Proc {
    /// The whole body of `GET path`, read to its end (a bench measures
    /// the answer, not only its headers).
    #[allow(dead_code)] // `ha_soak` reads its webhook, not the servers
    pub async fn get_bytes(&self, client: &reqwest::Client, path: &str) -> axum::body::Bytes {
        client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }
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

/// Starts Herald (`name == "herald"`) or the reference Alertmanager on
/// `config`, with its data under `data` (or a scratch directory), and
/// returns once `/-/ready` answers 200, with the time that took.
#[allow(dead_code)] // `ha_soak` starts clustered nodes of its own
pub async fn start_server(
    name: &'static str,
    config: &str,
    data: Option<&Path>,
    ready_within: Duration,
) -> (Proc, Duration) {
    start_server_with(name, config, data, ready_within, &[]).await
}

/// `start_server` with more flags (`compare`'s history section runs Herald
/// with and without one).
#[allow(dead_code)] // `ha_soak` starts clustered nodes of its own
pub async fn start_server_with(
    name: &'static str,
    config: &str,
    data: Option<&Path>,
    ready_within: Duration,
    extra: &[&str],
) -> (Proc, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(&cfg, config).unwrap();
    let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
    let port = free_port();
    let mut cmd = if name == "herald" {
        Command::new(herald_bin())
    } else {
        let mut c = Command::new(reference_alertmanager());
        c.arg("--cluster.listen-address=");
        c
    };
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = started + ready_within;
    while !client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "{name} did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let proc = Proc {
        name,
        child,
        base,
        _dir: dir,
    };
    (proc, took)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`); 0 when the
/// process is gone.
#[allow(dead_code)] // `ha_soak` measures no memory
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
