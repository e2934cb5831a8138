//! What the benchmark binaries share: a child process killed on drop and
//! free ports.

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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
