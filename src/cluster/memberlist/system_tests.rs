//! The codec against a real Alertmanager 0.33.1 on loopback (the
//! `system-tests` tier: it needs scripts/reference.sh's binaries).
//!
//! Herald's side dials Alertmanager's cluster port and does a join
//! push/pull as a memberlist node would, with a silence of its own in the
//! delegate state; it must find Alertmanager's node and silence in the
//! answer, and Alertmanager must take Herald's silence and list Herald as
//! a peer, still alive after the suspicion timeout because the responder
//! answers its probes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::delegate_state::FullState;
use super::message::{NodeState, VSN};
use super::responder::Responder;
use super::stream::{self, LocalNode, RemoteState};
use super::Error;
use crate::cluster::wire;
use crate::matcher::{MatchType, Matcher, Matchers};
use crate::silence::Silence;

fn am_bin() -> PathBuf {
    std::env::var_os("HERALD_AM_CURRENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/am-current"))
        .join("bin/alertmanager")
}

fn free_port() -> u16 {
    // A port free for TCP and UDP both: memberlist binds both.
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Am {
    child: Child,
    web: String,
    cluster: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Am {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_am(extra: &[&str]) -> Am {
    let bin = am_bin();
    assert!(
        bin.exists(),
        "{} is missing: run scripts/reference.sh",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("am.yml");
    std::fs::write(&config, "route:\n  receiver: r\nreceivers:\n- name: r\n").unwrap();
    let (web, cport) = (free_port(), free_port());
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cport}"))
        .arg(format!("--cluster.advertise-address=127.0.0.1:{cport}"))
        .arg("--log.level=debug")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start alertmanager");
    let am = Am {
        child,
        web: format!("http://127.0.0.1:{web}"),
        cluster: SocketAddr::from(([127, 0, 0, 1], cport)),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/-/ready", am.web)).await {
            if r.status().is_success() {
                return am;
            }
        }
        assert!(Instant::now() < deadline, "alertmanager never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn push_pull(
    am: &Am,
    label: &str,
    local: &LocalNode,
    state: &[u8],
) -> Result<RemoteState, Error> {
    let mut conn = TcpStream::connect(am.cluster).await?;
    tokio::time::timeout(
        Duration::from_secs(10),
        stream::push_pull(&mut conn, label, &[local.push_state()], state, true),
    )
    .await
    .map_err(|_| Error::Io(std::io::ErrorKind::TimedOut.into()))?
}

async fn status_peers(am: &Am) -> Vec<String> {
    let v: Value = reqwest::get(format!("{}/api/v2/status", am.web))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["cluster"]["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A silence made through Alertmanager's API; its id.
async fn create_am_silence(am: &Am) -> String {
    let now = jiff::Timestamp::now();
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", am.web))
        .json(&json!({
            "matchers": [
                {"name": "alertname", "value": "Disk", "isRegex": false, "isEqual": true},
                {"name": "env", "value": "dev|test", "isRegex": true, "isEqual": false},
            ],
            "startsAt": now.to_string(),
            "endsAt": (now + jiff::SignedDuration::from_hours(2)).to_string(),
            "createdBy": "am-user",
            "comment": "made in alertmanager",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["silenceID"].as_str().unwrap().to_string()
}

fn herald_silence() -> Silence {
    let now = jiff::Timestamp::now();
    Silence {
        id: "6f3c0c56-1c1d-4b8e-9d7e-0d5b5f6a2b11".into(),
        matchers: Matchers(vec![
            Matcher::new(MatchType::Equal, "from", "herald").unwrap()
        ]),
        starts_at: now,
        ends_at: now + jiff::SignedDuration::from_hours(1),
        updated_at: now,
        created_by: "herald".into(),
        comment: "pushed over memberlist".into(),
        annotations: Default::default(),
    }
}

#[tokio::test]
async fn push_pull_with_alertmanager_exchanges_nodes_and_silences() {
    let am = start_am(&[]).await;
    let am_silence_id = create_am_silence(&am).await;

    // Herald's member: the responder answers Alertmanager's probes.
    let port = free_port();
    let local = LocalNode {
        name: "herald-test".into(),
        addr: "127.0.0.1".parse().unwrap(),
        port,
        incarnation: 1,
        meta: vec![],
    };
    let ours = herald_silence();
    let state = FullState::from_records(
        &[wire::silence_to_pb(
            &ours,
            ours.ends_at + jiff::SignedDuration::from_hours(120),
        )],
        &[],
    )
    .encode_to_vec();
    let responder = Responder::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        String::new(),
        local.clone(),
        state.clone(),
    )
    .await
    .unwrap();

    let remote = push_pull(&am, "", &local, &state).await.unwrap();

    // Alertmanager's node: alive, at its advertised address, with the
    // versions memberlist 0.5 speaks and Alertmanager's empty meta.
    // The answer echoes the join flag (`handleConn` passes it back to
    // `sendLocalState`).
    assert!(remote.join);
    assert_eq!(remote.nodes.len(), 1, "{:?}", remote.nodes);
    let n = &remote.nodes[0];
    assert_eq!(n.state, NodeState::Alive);
    assert_eq!(n.addr, [127, 0, 0, 1]);
    assert_eq!(n.port, am.cluster.port());
    assert_eq!(n.vsn, VSN);
    assert!(n.meta.is_empty());
    // Alertmanager names its node with a ULID.
    assert_eq!(n.name.len(), 26, "{:?}", n.name);

    // Its silence, decoded with Herald's protobufs.
    let fs = FullState::decode_from(&remote.user_state).unwrap();
    let keys: Vec<&str> = fs.parts.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"sil") && keys.contains(&"nfl"), "{keys:?}");
    let silences = fs.silences().unwrap();
    let (got, _expires) = silences
        .into_iter()
        .filter_map(|m| wire::silence_from_pb(m).unwrap())
        .find(|(s, _)| s.id == am_silence_id)
        .expect("Alertmanager's silence in its full state");
    assert_eq!(
        got.matchers,
        Matchers(vec![
            Matcher::new(MatchType::Equal, "alertname", "Disk").unwrap(),
            Matcher::new(MatchType::NotRegexp, "env", "dev|test").unwrap(),
        ])
    );
    assert_eq!(got.created_by, "am-user");
    assert!(fs.nflog().unwrap().is_empty());

    // Alertmanager merged Herald's state: its API lists Herald's silence.
    let listed: Value = reqwest::get(format!("{}/api/v2/silence/{}", am.web, ours.id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["comment"], "pushed over memberlist", "{listed}");
    assert_eq!(listed["matchers"][0]["name"], "from");

    // And Herald's node: a second peer, still there after the suspicion
    // timeout (4 s for two nodes) because the responder answers probes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status_peers(&am).await.contains(&"herald-test".to_string()) {
        assert!(Instant::now() < deadline, "Herald never listed as a peer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    let peers = status_peers(&am).await;
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(peers.contains(&"herald-test".to_string()), "{peers:?}");
    {
        let seen = responder.seen.lock().unwrap();
        assert!(
            seen.udp_pings >= 3,
            "udp pings answered: {}",
            seen.udp_pings
        );
        assert_eq!(seen.refuted, 0, "Herald was suspected");
    }
    assert_eq!(responder.incarnation(), 1);
    responder.stop();
}

/// With `--cluster.label`, Alertmanager drops a stream without the label
/// (it closes the connection, no answer) and answers one with it; a
/// responder with the label stays a member.
#[tokio::test]
async fn the_cluster_label_must_match() {
    let am = start_am(&["--cluster.label=x"]).await;
    let port = free_port();
    let local = LocalNode {
        name: "herald-label".into(),
        addr: "127.0.0.1".parse().unwrap(),
        port,
        incarnation: 1,
        meta: vec![],
    };
    let empty = FullState::default().encode_to_vec();

    let unlabelled = push_pull(&am, "", &local, &empty).await;
    assert!(
        matches!(unlabelled, Err(Error::Truncated) | Err(Error::Io(_))),
        "{unlabelled:?}"
    );
    let wrong = push_pull(&am, "y", &local, &empty).await;
    assert!(
        matches!(wrong, Err(Error::Truncated) | Err(Error::Io(_))),
        "{wrong:?}"
    );
    assert_eq!(status_peers(&am).await.len(), 1);

    let responder = Responder::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "x".into(),
        local.clone(),
        empty.clone(),
    )
    .await
    .unwrap();
    let remote = push_pull(&am, "x", &local, &empty).await.unwrap();
    assert_eq!(remote.nodes.len(), 1);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let peers = status_peers(&am).await;
    assert!(peers.contains(&"herald-label".to_string()), "{peers:?}");
    assert!(responder.seen.lock().unwrap().udp_pings >= 2);
    responder.stop();
}

// Not Alertmanager's own test certificates (`cluster/testdata`): their CA
// expired in May 2026, and Go checks a root's validity where webpki, which
// takes a root as a name and a key, does not. Fresh ones from openssl,
// the same the Herald-to-Herald TLS tests use.
#[path = "../../../tests/common/certs.rs"]
#[allow(dead_code)]
mod certs;

/// The sum of a metric's series on Alertmanager's `/metrics`.
async fn am_metric(am: &Am, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", am.web))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Herald's TLS transport against Alertmanager's (`--cluster.tls-config`,
/// mutual TLS, client certificates required). A ping with no
/// source address goes over a packet connection before Alertmanager knows
/// Herald at all, so its ack can only go to the address the frame gave
/// (`FromAddr`): it must arrive over TLS at Herald's listener, dialled by
/// Alertmanager, with Alertmanager's own address as its sender. Then a
/// push/pull on a stream connection must bring back Alertmanager's node
/// and the silence made through its API, and Alertmanager must count the
/// stream and the packet bytes, with no read error.
#[tokio::test]
async fn herald_speaks_alertmanagers_tls_transport() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::message::{self, Ack, MessageType, Ping};
    use super::packet;
    use crate::cluster::transport::{accept_tls, ClusterTls, TlsLinks, TlsStats, Transport};

    // One certificate for both nodes, required both ways.
    let dir = tempfile::tempdir().unwrap();
    certs::make_certs(dir.path());
    let tls_file = certs::cluster_tls_file(dir.path(), "srv.pem", "srv.key", "ca.pem");
    let am = start_am(&[&format!("--cluster.tls-config={}", tls_file.display())]).await;
    let am_silence_id = create_am_silence(&am).await;

    // Herald's side: a TLS listener delivering packets with their sender,
    // and the transport whose packets name that listener.
    let tls = ClusterTls::load(&tls_file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = listener.local_addr().unwrap();
    let stats = Arc::new(TlsStats::default());
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, SocketAddr)>();
    {
        let (tls, stats, shutdown) = (tls.clone(), stats.clone(), shutdown.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, stats, shutdown, tx) =
                    (tls.clone(), stats.clone(), shutdown.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = accept_tls(
                        &tls,
                        tcp,
                        &stats,
                        Duration::from_secs(10),
                        &shutdown,
                        |p, from| {
                            let _ = tx.send((p, from));
                        },
                    )
                    .await;
                });
            }
        });
    }
    let tasks = crate::tasks::Tasks::new();
    let transport = Transport::Tls(TlsLinks::new(
        tls,
        me,
        stats.clone(),
        Duration::from_secs(10),
        shutdown.clone(),
        tasks,
    ));

    // (2) A ping over a packet connection; the ack comes back over one
    // Alertmanager dials.
    let ping = Ping {
        seq_no: 4242,
        ..Default::default()
    };
    let pkt = packet::encode_packet(&[message::encode(&ping)], "", false).unwrap();
    transport.send(am.cluster, pkt.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ack_from = loop {
        let (p, from) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no ack from Alertmanager over TLS")
            .expect("listener gone");
        let parts = packet::decode_packet(&p, "").unwrap();
        let acked = parts
            .iter()
            .filter(|part| part.kind == MessageType::Ack)
            .filter_map(|part| part.decode::<Ack>().ok())
            .any(|a| a.seq_no == 4242);
        if acked {
            break from;
        }
    };
    assert_eq!(ack_from, am.cluster, "Alertmanager's FromAddr");
    assert_eq!(
        stats.packet_bytes_sent.load(Ordering::Relaxed),
        pkt.len() as u64
    );
    assert!(stats.packet_bytes_received.load(Ordering::Relaxed) > 0);
    assert_eq!(
        am_metric(
            &am,
            "alertmanager_tls_transport_packet_bytes_received_total"
        )
        .await,
        pkt.len() as f64
    );

    // (1) A push/pull on a stream connection.
    let local = LocalNode {
        name: "herald-tls".into(),
        addr: "127.0.0.1".parse().unwrap(),
        port: me.port(),
        incarnation: 1,
        meta: vec![],
    };
    let mut conn = transport
        .open_stream(am.cluster, Duration::from_secs(10))
        .await
        .unwrap();
    let remote = tokio::time::timeout(
        Duration::from_secs(10),
        stream::push_pull(
            &mut conn,
            "",
            &[local.push_state()],
            &FullState::default().encode_to_vec(),
            false,
        ),
    )
    .await
    .expect("push/pull over TLS timed out")
    .unwrap();
    assert_eq!(remote.nodes.len(), 1, "{:?}", remote.nodes);
    assert_eq!(remote.nodes[0].port, am.cluster.port());
    let fs = FullState::decode_from(&remote.user_state).unwrap();
    let found = fs
        .silences()
        .unwrap()
        .into_iter()
        .filter_map(|m| wire::silence_from_pb(m).unwrap())
        .any(|(s, _)| s.id == am_silence_id);
    assert!(found, "Alertmanager's silence in its full state");
    assert_eq!(stats.streams_sent.load(Ordering::Relaxed), 1);
    assert_eq!(stats.stream_write_errors.load(Ordering::Relaxed), 0);
    assert_eq!(stats.packet_write_errors.load(Ordering::Relaxed), 0);
    assert_eq!(stats.read_errors.load(Ordering::Relaxed), 0);
    assert_eq!(
        am_metric(
            &am,
            "alertmanager_tls_transport_stream_connections_received_total"
        )
        .await,
        1.0
    );
    assert_eq!(
        am_metric(&am, "alertmanager_tls_transport_read_errors_total").await,
        0.0
    );
    shutdown.cancel();
}
