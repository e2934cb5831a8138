//! A network partition between two clustered Herald nodes, each in its own
//! network namespace (`ip netns`), joined by a bridge in the test's
//! namespace. While the link between them is cut (bridge port isolation)
//! both notify — fail open: a duplicate is better than a missed page — and
//! a silence made on one side stays there; once the partition heals, the
//! silence and the notification log converge by push/pull.
//!
//! Needs root and iproute2 (`ip`, `bridge`), as scripts/test.sh and CI run.

// Needs root and iproute2: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(40);

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("iproute2");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces on a bridge; removed on drop.
struct Net {
    tag: String,
}

impl Net {
    fn new() -> Net {
        let tag = format!("h{}", std::process::id() % 100_000);
        let net = Net { tag };
        let t = &net.tag;
        sh(&["ip", "link", "add", &format!("{t}br"), "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            "10.88.0.254/24",
            "dev",
            &format!("{t}br"),
        ]);
        sh(&["ip", "link", "set", &format!("{t}br"), "up"]);
        for (side, ip) in [("a", "10.88.0.1/24"), ("b", "10.88.0.2/24")] {
            let ns = format!("{t}{side}");
            let (inner, outer) = (format!("{t}{side}i"), format!("{t}{side}o"));
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            sh(&["ip", "link", "set", &inner, "netns", &ns]);
            sh(&["ip", "link", "set", &outer, "master", &format!("{t}br")]);
            sh(&["ip", "link", "set", &outer, "up"]);
            sh(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", ip, "dev", &inner,
            ]);
            sh(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inner, "up",
            ]);
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    /// Cuts (or restores) the link between the two namespaces; both still
    /// reach the test's namespace.
    fn partition(&self, on: bool) {
        let flag = if on { "on" } else { "off" };
        for side in ["a", "b"] {
            sh(&[
                "bridge",
                "link",
                "set",
                "dev",
                &format!("{}{side}o", self.tag),
                "isolated",
                flag,
            ]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let t = &self.tag;
        for side in ["a", "b"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{t}{side}")])
                .status();
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{t}{side}o")])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{t}br")])
            .status();
    }
}

struct Node {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(net: &Net, side: &str, ip: &str, peer_ip: &str, hook: &Webhook) -> Node {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.yml"),
        format!(
            "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
            hook.url("/p")
        ),
    )
    .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &format!("{}{side}", net.tag), herald_bin()])
        .arg(format!(
            "--config.file={}",
            dir.path().join("herald.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={ip}:9093"))
        .arg(format!("--cluster.listen-address={ip}:9094"))
        .arg(format!("--cluster.peer={peer_ip}:9094"))
        .arg(format!("--cluster.peer-name=node-{side}"))
        .args([
            "--cluster.peer-timeout=1s",
            "--cluster.gossip-interval=50ms",
            "--cluster.pushpull-interval=1s",
            "--cluster.probe-interval=200ms",
            "--cluster.probe-timeout=100ms",
            "--cluster.settle-timeout=5s",
            "--cluster.reconnect-interval=200ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Node {
        child,
        base: format!("http://{ip}:9093"),
        _dir: dir,
    }
}

async fn peers(n: &Node) -> Option<usize> {
    let v: Value = reqwest::get(format!("{}/api/v2/status", n.base))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    (v["cluster"]["status"] == "ready")
        .then(|| v["cluster"]["peers"].as_array().map_or(0, Vec::len))
}

async fn wait_peers(nodes: &[&Node], count: usize) {
    let deadline = Instant::now() + T;
    for n in nodes {
        while peers(n).await != Some(count) {
            assert!(
                Instant::now() < deadline,
                "{} never saw {count} members",
                n.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn has_silence(n: &Node, id: &str) -> bool {
    match reqwest::get(format!("{}/api/v2/silence/{id}", n.base)).await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_nodes_both_notify_and_converge_after_healing() {
    let net = Net::new();
    let hook = Webhook::start_on("10.88.0.254:0").await;
    let a = start(&net, "a", "10.88.0.1", "10.88.0.2", &hook);
    let b = start(&net, "b", "10.88.0.2", "10.88.0.1", &hook);
    wait_peers(&[&a, &b], 2).await;

    net.partition(true);
    wait_peers(&[&a, &b], 1).await;
    // Fail open: each side notifies the alert it gets.
    let alert = json!([{"labels": {"alertname": "Split"}}]);
    post_alerts(&a.base, &alert).await;
    post_alerts(&b.base, &alert).await;
    hook.nth(2, T).await;
    assert_eq!(hook.count(), 2, "both sides notified while apart");
    // A silence made on one side stays there while apart.
    let id = create_silence(
        &a.base,
        "alertname",
        "Later",
        "t",
        "made during the partition",
    )
    .await;
    assert!(!has_silence(&b, &id).await);

    // Heal: the members find each other again and the states converge.
    let written_before = counter(&b.base, "alertmanager_nflog_entries_written_total").await
        + counter(&a.base, "alertmanager_nflog_entries_written_total").await;
    net.partition(false);
    wait_peers(&[&a, &b], 2).await;
    let deadline = Instant::now() + T;
    while !has_silence(&b, &id).await {
        assert!(
            Instant::now() < deadline,
            "the silence never reached the other side"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both logged the same group with different times: the newer entry
    // wins on both sides after the exchange.
    wait_counter(
        &b.base,
        "alertmanager_cluster_pushpull_exchanges_total",
        1.0,
    )
    .await;
    let written_after = counter(&b.base, "alertmanager_nflog_entries_written_total").await
        + counter(&a.base, "alertmanager_nflog_entries_written_total").await;
    assert!(
        written_after > written_before,
        "no notification-log entry merged after healing"
    );
    // And the next group is notified once again.
    let alert = json!([{"labels": {"alertname": "Together"}}]);
    post_alerts(&a.base, &alert).await;
    post_alerts(&b.base, &alert).await;
    hook.nth(3, T).await;
    wait_counter(&b.base, "alertmanager_nflog_queries_total", 2.0).await;
    wait_counter(&a.base, "alertmanager_nflog_queries_total", 2.0).await;
    assert_eq!(hook.count(), 3, "one notification once healed");
}
