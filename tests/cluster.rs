//! High availability: Herald nodes on loopback form a memberlist cluster
//! (SWIM membership, gossip, push/pull). The same alerts posted to all
//! three give one notification; a silence created on one node mutes on
//! all; with the first node gone the next one notifies after its wait; a
//! node that joins later catches up by push/pull. With Alertmanager 0.33.1
//! (system tier): a Herald node joins an Alertmanager cluster, and a whole
//! Alertmanager cluster is replaced by Herald one node at a time and back.

mod common;

#[cfg(feature = "system-tests")]
use std::path::Path;
use std::time::Duration;

use common::*;
#[cfg(feature = "system-tests")]
use serde_json::json;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn config(hook: &Webhook) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1h\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/ha")
    )
}

struct Node {
    server: Server,
    /// The storage directory, when the node owns it (not restarted on it).
    _root: Option<tempfile::TempDir>,
}

/// Starts a node named `name` listening for gossip on `port`, peering with
/// `peers` (cluster ports).
#[cfg(feature = "system-tests")]
async fn node(hook: &Webhook, name: &str, port: u16, peers: &[u16]) -> Node {
    node_with(hook, name, port, peers, &[]).await
}

/// `node` with more command-line flags (or other values for its own).
#[cfg(feature = "system-tests")]
async fn node_with(hook: &Webhook, name: &str, port: u16, peers: &[u16], extra: &[String]) -> Node {
    let root = tempfile::tempdir().unwrap();
    let mut n = start_node_at(root.path(), hook, name, port, peers, extra).await;
    n._root = Some(root);
    n
}

/// `node_with` on a storage directory the test keeps, to restart on it.
#[cfg(feature = "system-tests")]
async fn start_node_at(
    root: &Path,
    hook: &Webhook,
    name: &str,
    port: u16,
    peers: &[u16],
    extra: &[String],
) -> Node {
    start_node_configured(root, &config(hook), name, port, peers, extra).await
}

/// `start_node_at` with a config of the test's own.
#[cfg(feature = "system-tests")]
async fn start_node_configured(
    root: &Path,
    config: &str,
    name: &str,
    port: u16,
    peers: &[u16],
    extra: &[String],
) -> Node {
    let mut args = vec![
        format!("--cluster.listen-address=127.0.0.1:{port}"),
        format!("--cluster.peer-name={name}"),
        "--cluster.peer-timeout=1s".into(),
        "--cluster.gossip-interval=50ms".into(),
        // No periodic exchange: what arrives comes by gossip (or, when
        // large, by a direct TCP send), or by the push/pull of a join.
        "--cluster.pushpull-interval=1h".into(),
        // Suspected members are declared down after 4 probe intervals.
        "--cluster.probe-interval=300ms".into(),
        "--cluster.probe-timeout=150ms".into(),
        "--cluster.settle-timeout=10s".into(),
    ];
    args.extend(
        peers
            .iter()
            .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
    );
    // A flag in `extra` replaces the default above.
    let name = |a: &str| a.split('=').next().unwrap_or_default().to_string();
    args.retain(|a| !extra.iter().any(|e| name(e) == name(a)));
    args.extend_from_slice(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = start_herald_at(root, config, &refs).await;
    Node {
        server,
        _root: None,
    }
}

async fn status(n: &Node) -> Value {
    get_json(&format!("{}/api/v2/status", n.server.base)).await["cluster"].clone()
}

/// Waits until every node is ready and sees `count` members.
#[cfg(feature = "system-tests")]
async fn wait_members(nodes: &[&Node], count: usize) {
    for n in nodes {
        wait_until("cluster settled", T, || async {
            let s = status(n).await;
            (s["status"] == "ready" && s["peers"].as_array().map_or(0, Vec::len) == count)
                .then_some(())
        })
        .await;
    }
}

async fn metric(n: &Node, series: &str) -> f64 {
    counter(&n.server.base, series).await
}

// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_notify_once_share_silences_and_fail_over() {
    let hook = Webhook::start().await;
    let ports = [free_port(), free_port(), free_port()];
    // Node A is given no peers: told where to listen, it waits for the
    // others to join it, as an Alertmanager would.
    let a = node(&hook, "node-a", ports[0], &[]).await;
    let b = node(&hook, "node-b", ports[1], &[ports[0], ports[2]]).await;
    let c = node(&hook, "node-c", ports[2], &ports[..2]).await;
    wait_members(&[&a, &b, &c], 3).await;
    let positions = [
        metric(&a, "alertmanager_peer_position").await,
        metric(&b, "alertmanager_peer_position").await,
        metric(&c, "alertmanager_peer_position").await,
    ];
    assert_eq!(
        positions,
        [0.0, 1.0, 2.0],
        "positions follow the sorted names"
    );
    assert_eq!(metric(&c, "alertmanager_cluster_members").await, 3.0);
    // The real amtool reads the cluster from the status API.
    let out = std::process::Command::new(am_current_bin("amtool"))
        .args([
            &format!("--alertmanager.url={}", b.server.base),
            "cluster",
            "show",
            "--output=json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ready") && text.contains("node-b"), "{text}");
    for name in ["node-a", "node-c"] {
        assert!(text.contains(name), "{text}");
    }

    // The same alert, posted to every node as each Prometheus does: one
    // notification, and every node's log knows it (so none repeats it).
    let alert = json!([{"labels": {"alertname": "Disk", "instance": "db1"}}]);
    for n in [&a, &b, &c] {
        post_alerts(&n.server.base, &alert).await;
    }
    hook.nth(1, T).await;
    for n in [&a, &b, &c] {
        // Each node's dedup stage ran (after its wait) and its log holds
        // the notification, written locally or merged from gossip.
        wait_until("dedup on every node", T, || async {
            (metric(n, "alertmanager_nflog_queries_total").await >= 1.0
                && metric(n, "alertmanager_nflog_entries_written_total").await >= 1.0)
                .then_some(())
        })
        .await;
    }
    let sent: f64 = [
        metric(
            &a,
            r#"alertmanager_notifications_total{integration="webhook"}"#,
        )
        .await,
        metric(
            &b,
            r#"alertmanager_notifications_total{integration="webhook"}"#,
        )
        .await,
        metric(
            &c,
            r#"alertmanager_notifications_total{integration="webhook"}"#,
        )
        .await,
    ]
    .iter()
    .sum();
    assert_eq!(sent, 1.0, "one notification for the cluster");
    assert_eq!(hook.count(), 1);

    // A silence made on node C mutes on A and B too.
    let id = create_silence(
        &c.server.base,
        "alertname",
        "Quiet",
        "ha-test",
        "replicated",
    )
    .await;
    for n in [&a, &b] {
        assert_eq!(
            wait_silence(&n.server.base, &id).await["comment"],
            "replicated"
        );
        post_alerts(&n.server.base, &json!([{"labels": {"alertname": "Quiet"}}])).await;
        let alerts = get_json(&format!(
            "{}/api/v2/alerts?filter=alertname%3D%22Quiet%22",
            n.server.base
        ))
        .await;
        assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]));
    }

    // A silence too large for a gossip packet reaches the others over TCP.
    let long = "x".repeat(3000);
    let big = create_silence(&a.server.base, "alertname", "Big", "ha-test", &long).await;
    for n in [&b, &c] {
        assert_eq!(wait_silence(&n.server.base, &big).await["comment"], long);
    }

    // The first node hangs (stopped, as a frozen VM): the others suspect
    // it, then declare it down; the next node notifies a new group, once,
    // after its wait. The health score is memberlist's awareness: a probe of
    // the hung node raises it only when the third node's nack comes too late
    // (a race memberlist has too), and answered probes lower it again, so
    // the test asserts only that it ends healthy.
    assert_eq!(metric(&b, "alertmanager_cluster_health_score").await, 0.0);
    let st = std::process::Command::new("kill")
        .args(["-STOP", &a.server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_members(&[&b, &c], 2).await;
    wait_until("health recovers once probes succeed", T, || async {
        (metric(&b, "alertmanager_cluster_health_score").await == 0.0).then_some(())
    })
    .await;
    let alert = json!([{"labels": {"alertname": "Load", "instance": "web1"}}]);
    for n in [&b, &c] {
        post_alerts(&n.server.base, &alert).await;
    }
    let second = hook.nth(2, T).await;
    assert_eq!(second.body["groupLabels"]["alertname"], "Load");
    for n in [&b, &c] {
        wait_until("dedup after failover", T, || async {
            (metric(n, "alertmanager_nflog_entries_written_total").await >= 2.0).then_some(())
        })
        .await;
    }
    assert_eq!(hook.count(), 2, "no duplicate after failover");

    // A node joining later gets the silences by push/pull.
    let d_port = free_port();
    let d = node(&hook, "node-d", d_port, &[ports[1]]).await;
    assert_eq!(
        wait_silence(&d.server.base, &id).await["comment"],
        "replicated"
    );
    assert!(metric(&d, "alertmanager_cluster_pushpull_exchanges_total").await >= 1.0);
    drop(d);
    drop(a);
}

/// Packets from a cluster with another `--cluster.label` are dropped: two
/// nodes with different labels never see each other.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_labels_keep_clusters_apart() {
    let hook = Webhook::start().await;
    let (p1, p2) = (free_port(), free_port());
    let root1 = tempfile::tempdir().unwrap();
    let root2 = tempfile::tempdir().unwrap();
    let args = |port: u16, peer: u16, name: &str, label: &str| {
        vec![
            format!("--cluster.listen-address=127.0.0.1:{port}"),
            format!("--cluster.peer=127.0.0.1:{peer}"),
            format!("--cluster.peer-name={name}"),
            format!("--cluster.label={label}"),
            "--cluster.gossip-interval=50ms".to_string(),
            "--cluster.settle-timeout=2s".to_string(),
        ]
    };
    let a1 = args(p1, p2, "x", "blue");
    let a2 = args(p2, p1, "y", "green");
    let n1 = start_herald_at(
        root1.path(),
        &config(&hook),
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let n2 = start_herald_at(
        root2.path(),
        &config(&hook),
        &a2.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let n1 = Node {
        server: n1,
        _root: Some(root1),
    };
    let n2 = Node {
        server: n2,
        _root: Some(root2),
    };
    wait_until("foreign packets dropped", T, || async {
        (metric(&n1, "alertmanager_cluster_messages_invalid_total").await >= 1.0).then_some(())
    })
    .await;
    for n in [&n1, &n2] {
        let s = status(n).await;
        assert_eq!(s["peers"].as_array().unwrap().len(), 1, "{s}");
    }
    // A lone node (its peer is not there) counts a malformed packet with
    // the right label and keeps running.
    let (p3, dead) = (free_port(), free_port());
    let root3 = tempfile::tempdir().unwrap();
    let a3 = args(p3, dead, "z", "blue");
    let n3 = start_herald_at(
        root3.path(),
        &config(&hook),
        &a3.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let n3 = Node {
        server: n3,
        _root: Some(root3),
    };
    assert_eq!(
        metric(&n3, "alertmanager_cluster_messages_invalid_total").await,
        0.0
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"blue\0\xff\xfe not a memberlist packet", ("127.0.0.1", p3))
        .unwrap();
    wait_until("malformed packet counted", T, || async {
        (metric(&n3, "alertmanager_cluster_messages_invalid_total").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(status(&n3).await["name"], "z", "the node keeps running");
}

/// With `--cluster.tls-config` peers talk only over mutually authenticated
/// TLS: two nodes with certificates of the cluster's CA form a cluster and
/// share silences (small ones as packets, large ones and the join's state
/// over TLS streams), no UDP port is open, and a node whose certificate
/// another CA signed is refused: it never joins and its silence never
/// arrives.
// System tier: openssl makes the certificates.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn tls_peers_need_a_certificate_the_cluster_trusts() {
    let hook = Webhook::start().await;
    let good = tempfile::tempdir().unwrap();
    let tls = make_cluster_tls(good.path());
    let flag = vec![format!("--cluster.tls-config={}", tls.display())];
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = node_with(&hook, "tls-a", pa, &[pb], &flag).await;
    let b = node_with(&hook, "tls-b", pb, &[pa], &flag).await;
    wait_members(&[&a, &b], 2).await;
    // Nothing listens for plaintext gossip.
    assert!(
        std::net::UdpSocket::bind(("127.0.0.1", pa)).is_ok(),
        "a TLS node must not open its UDP port"
    );

    let id = create_silence(&a.server.base, "alertname", "Tls", "tls-test", "over tls").await;
    let big = create_silence(
        &b.server.base,
        "alertname",
        "TlsBig",
        "tls-test",
        &"y".repeat(3000),
    )
    .await;
    wait_silence(&b.server.base, &id).await;
    wait_silence(&a.server.base, &big).await;
    for n in [&a, &b] {
        assert!(metric(n, "alertmanager_tls_transport_packet_bytes_received_total").await > 0.0);
        assert!(metric(n, "alertmanager_tls_transport_packet_bytes_sent_total").await > 0.0);
        assert_eq!(
            metric(n, "alertmanager_tls_transport_read_errors_total").await,
            0.0
        );
    }
    let streams = metric(
        &a,
        "alertmanager_tls_transport_stream_connections_received_total",
    )
    .await
        + metric(
            &b,
            "alertmanager_tls_transport_stream_connections_received_total",
        )
        .await;
    assert!(
        streams >= 1.0,
        "push/pull and large changes go over TLS streams"
    );

    // A rogue node: it trusts the cluster's CA, but its own certificate
    // comes from another CA.
    let rogue_dir = tempfile::tempdir().unwrap();
    make_certs(rogue_dir.path());
    std::fs::copy(
        good.path().join("ca.pem"),
        rogue_dir.path().join("trusted.pem"),
    )
    .unwrap();
    let rogue_tls = cluster_tls_file(rogue_dir.path(), "srv.pem", "srv.key", "trusted.pem");
    let c = node_with(
        &hook,
        "tls-c",
        pc,
        &[pa],
        &[
            format!("--cluster.tls-config={}", rogue_tls.display()),
            "--cluster.reconnect-interval=200ms".into(),
        ],
    )
    .await;
    let rogue = create_silence(&c.server.base, "alertname", "Rogue", "tls-test", "injected").await;
    wait_until("rogue handshakes refused", T, || async {
        (metric(&a, "alertmanager_tls_transport_read_errors_total").await >= 2.0).then_some(())
    })
    .await;
    for (n, count) in [(&a, 2), (&b, 2), (&c, 1)] {
        let s = status(n).await;
        assert_eq!(s["peers"].as_array().map_or(0, Vec::len), count, "{s}");
    }
    let r = reqwest::get(format!("{}/api/v2/silence/{rogue}", a.server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the rogue's silence must not arrive");
}

/// Alertmanager's own test files for `--cluster.tls-config` (two nodes,
/// `VerifyClientCertIfGiven`, paths relative to the file) work unchanged.
// System tier: Alertmanager's Go sources.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn alertmanagers_cluster_tls_files_load_unchanged() {
    let src =
        Path::new("/usr/share/gocode/src/github.com/prometheus/alertmanager/cluster/testdata");
    assert!(
        src.join("tls_config_node1.yml").exists(),
        "Alertmanager's source is missing: run scripts/test.sh (golang-github-prometheus-alertmanager-dev)"
    );
    let hook = Webhook::start().await;
    let (p1, p2) = (free_port(), free_port());
    let flag = |file: &str| [format!("--cluster.tls-config={}", src.join(file).display())];
    let n1 = node_with(&hook, "am-tls-1", p1, &[p2], &flag("tls_config_node1.yml")).await;
    let n2 = node_with(&hook, "am-tls-2", p2, &[p1], &flag("tls_config_node2.yml")).await;
    wait_members(&[&n1, &n2], 2).await;
    let id = create_silence(
        &n1.server.base,
        "alertname",
        "AmTls",
        "tls-test",
        "am files",
    )
    .await;
    wait_silence(&n2.server.base, &id).await;
}

/// A node that shuts down tells its peers it leaves (over UDP, and over
/// TLS on a connection of its own): with probes ten seconds apart the peer
/// could not have found out by itself before the deadline (a probe, then
/// four intervals of suspicion).
// System tier: openssl makes the certificates.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn a_node_shutting_down_tells_its_peers_it_leaves() {
    let hook = Webhook::start().await;
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let tls = cluster_tls_file(certs.path(), "srv.pem", "srv.key", "ca.pem");
    for flags in [
        vec![],
        vec![format!("--cluster.tls-config={}", tls.display())],
    ] {
        let mut flags = flags;
        flags.push("--cluster.probe-interval=10s".into());
        flags.push("--cluster.probe-timeout=1s".into());
        let (p1, p2) = (free_port(), free_port());
        let stays = node_with(&hook, "stays", p1, &[p2], &flags).await;
        let leaves = node_with(&hook, "leaves", p2, &[p1], &flags).await;
        wait_members(&[&stays, &leaves], 2).await;
        let st = std::process::Command::new("kill")
            .args(["-TERM", &leaves.server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        wait_until(
            "the peer to see the node leave",
            Duration::from_secs(12),
            || async {
                let s = status(&stays).await;
                (s["peers"].as_array().map_or(0, Vec::len) == 1).then_some(())
            },
        )
        .await;
    }
}

/// A node started on a database `herald storage recover` wrote merges a
/// peer's full state before it notifies: what the cluster notified and
/// silenced while it was down is not notified again, and the recovery
/// mark is gone once the state is whole (a later restart waits for nobody).
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn a_recovered_node_merges_a_peers_state_before_it_notifies() {
    let hook = Webhook::start().await;
    let (pa, pb) = (free_port(), free_port());
    let a = node(&hook, "node-a", pa, &[]).await;
    let b_root = tempfile::tempdir().unwrap();
    let b = start_node_at(b_root.path(), &hook, "node-b", pb, &[pa], &[]).await;
    wait_members(&[&a, &b], 2).await;
    stop(b).await;

    // While node-b is down the cluster notifies a group and makes a silence.
    let alert = json!([{"labels": {"alertname": "Disk", "instance": "db1"}}]);
    post_alerts(&a.server.base, &alert).await;
    hook.nth(1, T).await;
    let silence = create_silence(&a.server.base, "alertname", "Quiet", "ops", "down").await;

    let out = std::process::Command::new(herald_bin())
        .args(["storage", "recover"])
        .arg(format!(
            "--storage.path={}",
            b_root.path().join("data").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "recover: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let b = start_node_at(b_root.path(), &hook, "node-b", pb, &[pa], &[]).await;
    wait_until("the recovered node to merge a peer's state", T, || async {
        b.server
            .log
            .lock()
            .unwrap()
            .contains("merged a peer's full state into the recovered database")
            .then_some(())
    })
    .await;
    wait_silence(&b.server.base, &silence).await;
    // Prometheus sends node-b the same alert: its log already holds
    // node-a's notification, so nothing is sent again.
    post_alerts(&b.server.base, &alert).await;
    wait_until("node-b's dedup check", T, || async {
        (metric(&b, "alertmanager_nflog_queries_total").await >= 1.0).then_some(())
    })
    .await;
    // A group only node-b has is notified after that decision was taken.
    post_alerts(
        &b.server.base,
        &json!([{"labels": {"alertname": "Later", "instance": "db1"}}]),
    )
    .await;
    hook.nth(2, T).await;
    let disk = hook
        .all()
        .iter()
        .filter(|r| r.body["groupLabels"]["alertname"] == "Disk")
        .count();
    assert_eq!(disk, 1, "the recovered node notified Disk again");
    stop(b).await;

    // The mark was cleared: the next start is an ordinary one.
    let b = start_node_at(b_root.path(), &hook, "node-b", pb, &[pa], &[]).await;
    wait_members(&[&a, &b], 2).await;
    assert!(
        !b.server.log.lock().unwrap().contains("recovered database"),
        "the recovery mark outlived the merge:\n{}",
        b.server.log.lock().unwrap()
    );
}

/// Stops a node with SIGTERM and waits for it to exit (a clean stop).
#[cfg(feature = "system-tests")]
async fn stop(mut n: Node) {
    terminate(&mut n.server.child).await;
}

/// Stops a process as its service manager would (SIGTERM) and waits until
/// it has exited.
#[cfg(feature = "system-tests")]
async fn terminate(child: &mut std::process::Child) {
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Herald's `--enable-feature=notify-resolved-when-muted` in a cluster: an
/// alert the cluster notified as firing, then silenced (on the other node)
/// or inhibited, is notified resolved when it resolves, once for the
/// cluster; an alert muted before it was ever notified stays unsent.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn muted_alerts_notified_firing_are_notified_resolved_once_with_the_feature() {
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n\
         inhibit_rules:\n  - source_matchers: ['alertname=\"Maintenance\"']\n    target_matchers: ['alertname=\"Inhibited\"']\n\
         receivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/ha")
    );
    let ports = [free_port(), free_port()];
    let extra = ["--enable-feature=notify-resolved-when-muted".to_string()];
    let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = start_node_configured(roots[0].path(), &config, "node-a", ports[0], &[], &extra).await;
    let b = start_node_configured(
        roots[1].path(),
        &config,
        "node-b",
        ports[1],
        &[ports[0]],
        &extra,
    )
    .await;
    wait_members(&[&a, &b], 2).await;
    let at = |h: i64| {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(h))
            .unwrap()
            .to_string()
    };
    let post_both = |alerts: Value| {
        let (a, b) = (a.server.base.clone(), b.server.base.clone());
        async move {
            for base in [a, b] {
                assert_eq!(post_alerts(&base, &alerts).await.0, 200);
            }
        }
    };
    let alert = |name: &str, ends: i64| json!({"labels": {"alertname": name}, "endsAt": at(ends)});

    // Silenced and Inhibited are notified firing; Never is silenced first.
    let never = create_silence(&a.server.base, "alertname", "Never", "ha-test", "before").await;
    wait_silence(&b.server.base, &never).await;
    post_both(json!([
        alert("Silenced", 1),
        alert("Inhibited", 1),
        alert("Never", 1)
    ]))
    .await;
    let firing: Vec<String> = [hook.nth(1, T).await, hook.nth(2, T).await]
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.body["groupLabels"]["alertname"], r.body["status"]
            )
        })
        .collect();
    assert_eq!(firing.len(), 2);
    for want in [r#""Silenced" "firing""#, r#""Inhibited" "firing""#] {
        assert!(firing.contains(&want.to_string()), "{firing:?}");
    }

    // Then muted: a silence made on node B, an inhibiting alert.
    let id = create_silence(&b.server.base, "alertname", "Silenced", "ha-test", "after").await;
    wait_silence(&a.server.base, &id).await;
    post_both(json!([alert("Maintenance", 1)])).await;
    let maintenance = hook.nth(3, T).await;
    assert_eq!(maintenance.body["groupLabels"]["alertname"], "Maintenance");

    // All three resolve: the two notified firing are notified resolved.
    post_both(json!([
        alert("Silenced", -1),
        alert("Inhibited", -1),
        alert("Never", -1)
    ]))
    .await;
    let resolved: Vec<String> = [hook.nth(4, T).await, hook.nth(5, T).await]
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.body["groupLabels"]["alertname"], r.body["status"]
            )
        })
        .collect();
    for want in [r#""Silenced" "resolved""#, r#""Inhibited" "resolved""#] {
        assert!(resolved.contains(&want.to_string()), "{resolved:?}");
    }
    // A group goes once a flush has handled its resolved alerts, sent or
    // not: when only Maintenance's is left on both nodes, both have decided,
    // and there was no second resolved notification, and none for Never.
    for n in [&a, &b] {
        wait_until("the resolved groups flushed on both nodes", T, || async {
            (metric(n, "alertmanager_dispatcher_aggregation_groups").await == 1.0).then_some(())
        })
        .await;
    }
    assert_eq!(
        hook.count(),
        5,
        "one resolved notification each for the cluster"
    );
    drop((a, b, roots));
}

/// An Alertmanager 0.33.1 process, killed when dropped.
#[cfg(feature = "system-tests")]
struct AmProcess {
    child: std::process::Child,
    base: String,
    _root: tempfile::TempDir,
}

#[cfg(feature = "system-tests")]
impl Drop for AmProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Alertmanager 0.33.1 named `name` with gossip on `cluster_port`,
/// peering with `peers`, with more flags (or other values for its own).
#[cfg(feature = "system-tests")]
fn start_am_with(
    hook: &Webhook,
    name: &str,
    cluster_port: u16,
    peers: &[u16],
    extra: &[String],
) -> AmProcess {
    let root = tempfile::tempdir().unwrap();
    let (child, base) = spawn_am(root.path(), &config(hook), name, cluster_port, peers, extra);
    AmProcess {
        child,
        base,
        _root: root,
    }
}

/// Starts Alertmanager 0.33.1 with its config in `root` and its data in
/// `root/data`, where Herald started on the same root finds (and imports)
/// it; returns the process and its API's base URL.
#[cfg(feature = "system-tests")]
fn spawn_am(
    root: &Path,
    config: &str,
    name: &str,
    cluster_port: u16,
    peers: &[u16],
    extra: &[String],
) -> (std::process::Child, String) {
    let cfg = root.join("am.yml");
    std::fs::write(&cfg, config).unwrap();
    let web = free_port();
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.path={}", root.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{web}"),
        format!("--cluster.listen-address=127.0.0.1:{cluster_port}"),
        format!("--cluster.peer-name={name}"),
        "--cluster.gossip-interval=50ms".into(),
        "--cluster.settle-timeout=2s".into(),
    ];
    args.extend(
        peers
            .iter()
            .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
    );
    let flag = |a: &str| a.split('=').next().unwrap_or_default().to_string();
    args.retain(|a| !extra.iter().any(|e| flag(e) == flag(a)));
    args.extend_from_slice(extra);
    let child = std::process::Command::new(am_current_bin("alertmanager"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start Alertmanager 0.33.1");
    (child, format!("http://127.0.0.1:{web}"))
}

/// The peer names a node's status lists.
#[cfg(feature = "system-tests")]
async fn peer_names(base: &str) -> Option<Vec<String>> {
    let st: Value = reqwest::get(format!("{base}/api/v2/status"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut names: Vec<String> = st["cluster"]["peers"]
        .as_array()?
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    names.sort();
    Some(names)
}

/// Some when the node at `base` (either program) has settled and lists
/// exactly the members `want` (sorted).
#[cfg(feature = "system-tests")]
async fn ready_with(base: &str, want: &[String]) -> Option<()> {
    let st: Value = reqwest::get(format!("{base}/api/v2/status"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    (st["cluster"]["status"] == "ready" && peer_names(base).await?.as_slice() == want).then_some(())
}

/// A Herald node joins a running Alertmanager 0.33.1 cluster (issue 19):
/// every node lists all three (in its API and in `amtool cluster show`),
/// silences made on either kind reach the others, the positions agree
/// (one 0, one 1, one 2), probes are answered (health score 0), and an
/// alert posted to all three is notified once. `extra` goes to all three
/// (mutual TLS, a cluster label); every node waits 1 s per position.
#[cfg(feature = "system-tests")]
async fn mixed_cluster(extra: &[String]) {
    let hook = Webhook::start().await;
    let (pa, pb, ph) = (free_port(), free_port(), free_port());
    let mut flags = vec!["--cluster.peer-timeout=1s".to_string()];
    flags.extend_from_slice(extra);
    let a = start_am_with(&hook, "am-a", pa, &[], &flags);
    let b = start_am_with(&hook, "am-b", pb, &[pa], &flags);
    let h = node_with(&hook, "herald-c", ph, &[pa], extra).await;
    let all = vec!["am-a".to_string(), "am-b".into(), "herald-c".into()];
    for base in [&a.base, &b.base, &h.server.base] {
        let want = all.clone();
        wait_until(&format!("{base} ready with all three"), T, || {
            let want = want.clone();
            async move { ready_with(base, &want).await }
        })
        .await;
        let out = std::process::Command::new(am_current_bin("amtool"))
            .args([
                &format!("--alertmanager.url={base}"),
                "cluster",
                "show",
                "-o",
                "extended",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "amtool cluster show: {out:?}");
        for name in &all {
            assert!(text.contains(name.as_str()), "{base}: {text}");
        }
        assert!(text.contains("ready"), "{base}: {text}");
    }
    let from_am = create_silence(&b.base, "alertname", "FromAm", "mixed", "made on am-b").await;
    let from_herald = create_silence(
        &h.server.base,
        "alertname",
        "FromHerald",
        "mixed",
        "made on herald",
    )
    .await;
    assert_eq!(
        wait_silence(&h.server.base, &from_am).await["comment"],
        "made on am-b"
    );
    for base in [&a.base, &b.base] {
        assert_eq!(
            wait_silence(base, &from_herald).await["comment"],
            "made on herald"
        );
    }
    // Each silence mutes on the other kind of node.
    for (base, name, id) in [
        (&h.server.base, "FromAm", &from_am),
        (&a.base, "FromHerald", &from_herald),
        (&b.base, "FromHerald", &from_herald),
    ] {
        post_alerts(base, &json!([{"labels": {"alertname": name}}])).await;
        let alerts = get_json(&format!(
            "{base}/api/v2/alerts?filter=alertname%3D%22{name}%22"
        ))
        .await;
        assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]), "{base}");
    }
    // Alertmanager's own view of the positions: am-a 0, am-b 1; Herald's
    // is 2, so exactly one node (am-a) sends first.
    let pos = |body: String| {
        body.lines()
            .find(|l| l.starts_with("alertmanager_peer_position "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
    };
    let text = |base: String| async move {
        reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    assert_eq!(pos(text(a.base.clone()).await.unwrap()), Some(0.0));
    assert_eq!(pos(text(b.base.clone()).await.unwrap()), Some(1.0));
    assert_eq!(metric(&h, "alertmanager_peer_position").await, 2.0);
    let alert = json!([{"labels": {"alertname": "Mixed", "instance": "x"}}]);
    for base in [&a.base, &b.base, &h.server.base] {
        assert_eq!(post_alerts(base, &alert).await.0, 200);
    }
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["groupLabels"]["alertname"], "Mixed");
    // The later nodes wait their position × peer timeout (at most 2 s)
    // and find am-a's log entry: no second notification by then.
    wait_until("Herald logged the peer's entry", T, || async {
        (metric(&h, "alertmanager_nflog_entries_written_total").await >= 1.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(hook.count(), 1, "one notification from the mixed cluster");
    // Probes are answered both ways: nobody suspects anybody.
    wait_until("health score 0", T, || async {
        (metric(&h, "alertmanager_cluster_health_score").await == 0.0).then_some(())
    })
    .await;
    assert_eq!(peer_names(&a.base).await, Some(all));
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herald_node_joins_an_alertmanager_cluster() {
    mixed_cluster(&[]).await;
}

/// The mixed cluster gossiping over Alertmanager's TLS transport, every
/// node requiring a client certificate of the cluster's CA.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herald_node_joins_an_alertmanager_cluster_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = make_cluster_tls(dir.path());
    mixed_cluster(&[format!("--cluster.tls-config={}", tls.display())]).await;
}

/// The mixed cluster with `--cluster.label`: every packet and stream
/// carries the label, on both kinds of node.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herald_node_joins_a_labelled_alertmanager_cluster() {
    mixed_cluster(&["--cluster.label=prod-eu".to_string()]).await;
}

/// The rolling test's routing: short groups, so that the alerts flowing
/// while the nodes are replaced notify often.
#[cfg(feature = "system-tests")]
fn rolling_config(hook: &Webhook) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/rolling")
    )
}

/// What both programs run with in the rolling test: Alertmanager's own
/// probe and push/pull timings, and the same short peer timeout, gossip
/// interval and settle timeout.
#[cfg(feature = "system-tests")]
const ROLLING_FLAGS: [&str; 6] = [
    "--cluster.peer-timeout=1s",
    "--cluster.gossip-interval=50ms",
    "--cluster.settle-timeout=5s",
    "--cluster.probe-interval=1s",
    "--cluster.probe-timeout=500ms",
    "--cluster.pushpull-interval=1m",
];

#[cfg(feature = "system-tests")]
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Alertmanager,
    Herald,
}

/// One replica of a rolling replacement: either program, on the storage
/// root that stays when the process is replaced (a StatefulSet's volume).
#[cfg(feature = "system-tests")]
enum Replica {
    Am(std::process::Child, String),
    Herald(Node),
}

#[cfg(feature = "system-tests")]
impl Replica {
    async fn start(
        kind: Kind,
        hook: &Webhook,
        root: &Path,
        i: usize,
        ports: &[u16; 3],
        extra: &[String],
    ) -> Replica {
        let name = format!("node-{i}");
        let peers: Vec<u16> = (0..3).filter(|&j| j != i).map(|j| ports[j]).collect();
        let mut flags: Vec<String> = ROLLING_FLAGS.iter().map(|f| f.to_string()).collect();
        flags.extend_from_slice(extra);
        // Who sent a notification, in the receiver's history.
        flags.push(format!("--web.external-url=http://{kind:?}-{name}.test"));
        let config = rolling_config(hook);
        match kind {
            Kind::Alertmanager => {
                let (child, base) = spawn_am(root, &config, &name, ports[i], &peers, &flags);
                Replica::Am(child, base)
            }
            Kind::Herald => Replica::Herald(
                start_node_configured(root, &config, &name, ports[i], &peers, &flags).await,
            ),
        }
    }

    fn base(&self) -> &str {
        match self {
            Replica::Am(_, base) => base,
            Replica::Herald(n) => &n.server.base,
        }
    }

    async fn terminate(&mut self) {
        match self {
            Replica::Am(child, _) => terminate(child).await,
            Replica::Herald(n) => terminate(&mut n.server.child).await,
        }
    }
}

#[cfg(feature = "system-tests")]
impl Drop for Replica {
    fn drop(&mut self) {
        if let Replica::Am(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A list the load task and the rollout share (node URLs, silence ids).
#[cfg(feature = "system-tests")]
type Shared = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A three-node cluster being replaced one node at a time while alerts
/// and silences keep coming to whichever nodes are up.
#[cfg(feature = "system-tests")]
struct Rollout {
    hook: Webhook,
    ports: [u16; 3],
    roots: Vec<tempfile::TempDir>,
    /// Every node's own flags (TLS, a label).
    extra: Vec<String>,
    replicas: Vec<Option<Replica>>,
    /// The nodes Prometheus and the silence makers reach: not one being
    /// replaced.
    live: Shared,
    /// Every silence the cluster accepted.
    silences: Shared,
    started: std::time::Instant,
    /// What happened when, for the history of an alert left firing.
    events: Vec<(std::time::Instant, String)>,
}

#[cfg(feature = "system-tests")]
impl Rollout {
    async fn start(kind: Kind, extra: &[String]) -> Rollout {
        let hook = Webhook::start().await;
        let ports = [free_port(), free_port(), free_port()];
        let roots: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut replicas = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            replicas.push(Some(
                Replica::start(kind, &hook, root.path(), i, &ports, extra).await,
            ));
        }
        let r = Rollout {
            hook,
            ports,
            roots,
            extra: extra.to_vec(),
            replicas,
            live: Default::default(),
            silences: Default::default(),
            started: std::time::Instant::now(),
            events: Vec::new(),
        };
        r.wait_whole().await;
        *r.live.lock().unwrap() = r.bases();
        r
    }

    fn bases(&self) -> Vec<String> {
        self.replicas
            .iter()
            .flatten()
            .map(|r| r.base().to_string())
            .collect()
    }

    /// Waits until every node is ready and lists all three.
    async fn wait_whole(&self) {
        let all: Vec<String> = (0..3).map(|i| format!("node-{i}")).collect();
        for base in self.bases() {
            let want = all.clone();
            wait_until(&format!("{base} ready with all three"), T, || {
                let (want, base) = (want.clone(), base.clone());
                async move { ready_with(&base, &want).await }
            })
            .await;
        }
    }

    /// Replaces node `i` by a process of `kind` on the same storage,
    /// name and cluster address, and waits until the cluster is whole.
    async fn replace(&mut self, i: usize, kind: Kind) {
        self.events
            .push((std::time::Instant::now(), format!("node-{i} stops")));
        let mut old = self.replicas[i].take().unwrap();
        self.live.lock().unwrap().retain(|b| b != old.base());
        old.terminate().await;
        drop(old);
        let new = Replica::start(
            kind,
            &self.hook,
            self.roots[i].path(),
            i,
            &self.ports,
            &self.extra,
        )
        .await;
        self.live.lock().unwrap().push(new.base().to_string());
        self.replicas[i] = Some(new);
        self.events
            .push((std::time::Instant::now(), format!("node-{i} is {kind:?}")));
        self.wait_whole().await;
        self.events
            .push((std::time::Instant::now(), "whole".into()));
    }

    /// Silences accepted by the cluster that some node does not hold,
    /// once gossip had its chance.
    async fn lost_silences(&self) -> usize {
        let ids = self.silences.lock().unwrap().clone();
        let bases = self.bases();
        let client = reqwest::Client::new();
        let missing = || async {
            let mut n = 0;
            for id in &ids {
                for base in &bases {
                    let r = client
                        .get(format!("{base}/api/v2/silence/{id}"))
                        .send()
                        .await;
                    if !r.is_ok_and(|r| r.status().is_success()) {
                        n += 1;
                        break;
                    }
                }
            }
            n
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = missing().await;
            if n == 0 || std::time::Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// (notifications, duplicates among them: the same group with the same
    /// alerts in the same states again, resolved alerts whose last
    /// notification said firing)
    fn figures(&self, last_round: u64) -> (usize, usize, usize) {
        let all = self.hook.all();
        let mut seen = std::collections::HashSet::new();
        let mut last = std::collections::HashMap::new();
        let mut dups = 0;
        for n in &all {
            let mut states: Vec<String> = n.body["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let inst = a["labels"]["instance"].as_str().unwrap_or_default();
                    last.insert(
                        format!("{}|{inst}", n.body["groupKey"]),
                        a["status"].as_str().unwrap_or_default().to_string(),
                    );
                    format!("{inst}={}", a["status"])
                })
                .collect();
            states.sort();
            if !seen.insert(format!("{}|{}", n.body["groupKey"], states.join(","))) {
                dups += 1;
            }
        }
        let stuck: Vec<&String> = last
            .iter()
            .filter(|(k, state)| {
                *state == "firing"
                    && k.rsplit('|')
                        .next()
                        .and_then(|i| i.strip_prefix('r'))
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n + 1 < last_round)
            })
            .map(|(k, _)| k)
            .collect();
        // What the receiver heard of each, when and from whom.
        if !stuck.is_empty() {
            for (at, what) in &self.events {
                eprintln!(
                    "  {:>6} ms {what}",
                    at.duration_since(self.started).as_millis()
                );
            }
        }
        for k in &stuck {
            eprintln!("left firing: {k}");
            for n in &all {
                for a in n.body["alerts"].as_array().into_iter().flatten() {
                    let key = format!(
                        "{}|{}",
                        n.body["groupKey"],
                        a["labels"]["instance"].as_str().unwrap_or_default()
                    );
                    if &&key == k {
                        eprintln!(
                            "  {:>6} ms {} from {}",
                            n.at.duration_since(self.started).as_millis(),
                            a["status"],
                            n.body["externalURL"]
                        );
                    }
                }
            }
        }
        (all.len(), dups, stuck.len())
    }
}

/// Alerts and silences flowing to the live nodes of every rollout, once
/// a second, as Prometheus (sending to every replica) and people do,
/// until `stop`; returns the rounds sent.
#[cfg(feature = "system-tests")]
async fn rolling_load(
    targets: Vec<(Shared, Shared)>,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    let client = reqwest::Client::new();
    let mut round = 0u64;
    // When each round's short-lived alerts resolved: as Prometheus does,
    // a resolved alert is sent again for a while (here five rounds), so a
    // node that was down when it resolved hears of it too.
    let mut resolved_at: Vec<String> = Vec::new();
    while !stop.is_cancelled() {
        resolved_at.push(jiff::Timestamp::now().to_string());
        let mut batch = Vec::new();
        for g in 0..20u64 {
            for i in 0..3 {
                batch.push(
                    json!({"labels": {"alertname": format!("G{g}"), "instance": format!("i{i}")}}),
                );
            }
            // Alert r<k> fires in round k in a fifth of the groups and
            // resolves in round k + 1.
            if (g + round).is_multiple_of(5) {
                batch.push(json!({"labels": {"alertname": format!("G{g}"), "instance": format!("r{round}")}}));
            }
            for k in round.saturating_sub(5)..round {
                if (g + k).is_multiple_of(5) {
                    let ends = &resolved_at[k as usize + 1];
                    batch.push(json!({"labels": {"alertname": format!("G{g}"), "instance": format!("r{k}")}, "endsAt": ends}));
                }
            }
        }
        let batch = Value::Array(batch);
        for (live, silences) in &targets {
            let bases = live.lock().unwrap().clone();
            for base in &bases {
                let _ = client
                    .post(format!("{base}/api/v2/alerts"))
                    .json(&batch)
                    .send()
                    .await;
            }
            let Some(base) = bases.get(round as usize % bases.len().max(1)) else {
                continue;
            };
            let now = jiff::Timestamp::now();
            let made = client
                .post(format!("{base}/api/v2/silences"))
                .json(&json!({
                    "matchers": [{"name": "alertname", "value": format!("Maintenance{round}"), "isRegex": false}],
                    "startsAt": now.to_string(),
                    "endsAt": now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string(),
                    "createdBy": "rolling",
                    "comment": "made during the rollout",
                }))
                .send()
                .await;
            if let Ok(r) = made.and_then(|r| r.error_for_status()) {
                if let Ok(v) = r.json::<Value>().await {
                    if let Some(id) = v["silenceID"].as_str() {
                        silences.lock().unwrap().push(id.to_string());
                    }
                }
            }
        }
        round += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => {}
        }
    }
    round
}

/// Issue 19's rolling replacement: a cluster of three Alertmanager 0.33.1
/// processes is replaced one node at a time by Herald nodes (same name,
/// address and storage, as a StatefulSet's pods are), then rolled back to
/// Alertmanager the same way, while alerts flow to every live node and
/// silences are made on them. Beside it, under the same load, an
/// Alertmanager cluster restarted one node at a time as often: the
/// duplicates Alertmanager's own cluster gives. No silence may be lost.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_replacement_of_alertmanager_by_herald_and_back() {
    rolling_replacement(&[]).await;
}

/// The rolling replacement with the cluster gossiping over mutual TLS and
/// labelled (`--cluster.tls-config`, `--cluster.label`).
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_replacement_over_mutual_tls_with_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let tls = make_cluster_tls(dir.path());
    rolling_replacement(&[
        format!("--cluster.tls-config={}", tls.display()),
        "--cluster.label=prod-eu".to_string(),
    ])
    .await;
}

/// The rolling replacement, every node run with `extra`.
#[cfg(feature = "system-tests")]
async fn rolling_replacement(extra: &[String]) {
    let mut herald = Rollout::start(Kind::Alertmanager, extra).await;
    let mut am = Rollout::start(Kind::Alertmanager, extra).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let load = tokio::spawn(rolling_load(
        vec![
            (herald.live.clone(), herald.silences.clone()),
            (am.live.clone(), am.silences.clone()),
        ],
        stop.clone(),
    ));
    let rounds = |secs| tokio::time::sleep(Duration::from_secs(secs));
    rounds(4).await;
    let mut lost_forward = (0, 0);
    for (step, kind) in [
        Kind::Herald,
        Kind::Herald,
        Kind::Herald,
        Kind::Alertmanager,
        Kind::Alertmanager,
        Kind::Alertmanager,
    ]
    .into_iter()
    .enumerate()
    {
        let i = step % 3;
        tokio::join!(herald.replace(i, kind), am.replace(i, Kind::Alertmanager));
        rounds(3).await;
        if step == 2 {
            lost_forward = tokio::join!(herald.lost_silences(), am.lost_silences());
        }
    }
    stop.cancel();
    let last_round = load.await.unwrap();
    // Until the receivers have heard nothing for a while: the last
    // changes' flushes and the peers' waits are over.
    for r in [&herald, &am] {
        let mut seen = (r.hook.count(), std::time::Instant::now());
        wait_until("the receiver is quiet", Duration::from_secs(60), || {
            let n = r.hook.count();
            if n != seen.0 {
                seen = (n, std::time::Instant::now());
            }
            let quiet = seen.1.elapsed() > Duration::from_secs(6);
            async move { quiet.then_some(()) }
        })
        .await;
    }
    let lost_back = tokio::join!(herald.lost_silences(), am.lost_silences());
    let (hn, hd, hs) = herald.figures(last_round);
    let (an, ad, as_) = am.figures(last_round);
    let silences = (
        herald.silences.lock().unwrap().len(),
        am.silences.lock().unwrap().len(),
    );
    eprintln!(
        "rolling replacement ({extra:?}), {last_round} rounds of 20 groups\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}\n{:<44} {:>18} {:>18}",
        "", "AM->Herald->AM", "AM restarted",
        "notifications", hn, an,
        "duplicates among them", hd, ad,
        "resolved alerts last seen firing", hs, as_,
        "silences made", silences.0, silences.1,
        "silences lost (after 3 replacements)", lost_forward.0, lost_forward.1,
        "silences lost (at the end)", lost_back.0, lost_back.1,
    );
    assert!(silences.0 >= 10, "silences were made throughout");
    assert_eq!(
        lost_forward.0, 0,
        "no silence lost replacing Alertmanager by Herald"
    );
    assert_eq!(lost_back.0, 0, "no silence lost rolling back");
    assert_eq!(hs, 0, "every resolved alert was notified resolved");
    // Both counts are noisy (24–52 against 44–60 over eleven runs, the
    // closest 46 against 48): a tenth of Alertmanager's count is the noise
    // allowed, not a goal.
    assert!(
        hd <= ad + ad / 10,
        "no more duplicates than Alertmanager's own rolling restart ({hd} against {ad})"
    );
}
