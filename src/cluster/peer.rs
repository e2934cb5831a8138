//! A cluster peer: HashiCorp memberlist's membership (`memberlist::members`)
//! over UDP (or TLS, see `transport`), the replicated states (silences,
//! notification log) gossiped as Alertmanager's delegate gossips them,
//! full-state push/pull over TCP on join and periodically, Alertmanager's
//! reconnect and refresh of peers, and the settle and position logic the
//! notification pipeline waits on. Because every byte is memberlist's and
//! Alertmanager's, a Herald node and Alertmanager nodes form one cluster.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use prost::Message;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::gossip::{self, Gossip};
use super::memberlist::delegate_state::{FullState, Part, NFLOG, SILENCES};
use super::memberlist::members::{self, Member, Members, Out, Topic};
use super::memberlist::message::{MessageType, PushNodeState};
use super::memberlist::{packet, stream, Error as MlError};
use super::transport::{self, ClusterTls, Incoming, TlsLinks, TlsStats, Transport};
use super::wire;
use crate::nflog::NotificationLog;
use crate::silence::Silences;
use crate::tasks::Tasks;

/// Inputs queued for the gossip loop. memberlist queues incoming gossip
/// the same way (`HandoffQueueDepth`, 1024) and drops what arrives while
/// the queue is full: a node that cannot keep up loses packets, as UDP
/// would, instead of growing without bound or stalling the socket reader.
/// Timers and local changes wait for room; only packets are dropped.
const INPUT_QUEUE: usize = 1024;

/// What a Herald node puts in its memberlist metadata, so Herald nodes
/// know each other (claims go only to them). Alertmanager's is empty and
/// ignored by Alertmanager whatever it holds.
const HERALD_META: &[u8] = b"herald";

/// Alertmanager's `MaxGossipPacketSize`; a broadcast over half of it goes
/// to every member over TCP instead (`OversizedMessage`).
const MAX_GOSSIP_PACKET: usize = 1400;

/// Alertmanager re-resolves `--cluster.peer` and joins any it is not
/// connected to this often (`DefaultRefreshInterval`).
const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// `--cluster.*` settings.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub listen: SocketAddr,
    pub advertise: SocketAddr,
    /// `--cluster.peer`: `host:port`, resolved at start and on every
    /// reconnect attempt.
    pub peers: Vec<String>,
    pub name: String,
    pub peer_timeout: Duration,
    pub gossip_interval: Duration,
    pub pushpull_interval: Duration,
    pub settle_timeout: Duration,
    pub tcp_timeout: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub reconnect_interval: Duration,
    pub reconnect_timeout: Duration,
    /// `--cluster.label`: packets from clusters with another label are
    /// dropped.
    pub label: String,
    /// `--cluster.tls-config`: all traffic over mutually authenticated TLS.
    pub tls: Option<ClusterTls>,
    /// The node's database was salvaged by `herald storage recover` and
    /// may miss silences and log entries: it is not ready (and does not
    /// notify) until it has merged a peer's full state.
    pub full_state_before_ready: bool,
}

/// The states a peer replicates, and the merges the broadcasts and the
/// push/pull exchanges feed.
pub struct Replicated {
    pub silences: Arc<Silences>,
    pub nflog: Arc<dyn NotificationLog>,
}

impl Replicated {
    /// Merges one message; true when it changed our state.
    fn merge(&self, g: Gossip, now: Timestamp) -> bool {
        let r = match g {
            Gossip::Silence(s, expires) => self
                .silences
                .merge(s, expires, now)
                .map_err(|e| e.to_string()),
            Gossip::Nflog(key, entry) => self
                .nflog
                .merge(&key, entry, now)
                .map_err(|e| e.to_string()),
            // Claims are not state; `Shared::accept_claim` keeps them.
            Gossip::Claim(_) => Ok(false),
        };
        r.unwrap_or_else(|e| {
            tracing::warn!(err = %e, "merging gossip failed");
            false
        })
    }

    /// Everything we hold, as Alertmanager's delegate answers `LocalState`:
    /// a `clusterpb.FullState` of the `nfl` and `sil` parts.
    fn full_state(&self) -> Vec<u8> {
        let silences: Vec<wire::PbMeshSilence> = self
            .silences
            .snapshot()
            .into_iter()
            .map(|(s, exp)| wire::silence_to_pb(&s, exp))
            .collect();
        let nflog: Vec<wire::PbMeshEntry> = self
            .nflog
            .snapshot()
            .into_iter()
            .filter_map(|(k, e)| wire::entry_to_pb(&k, &e))
            .collect();
        FullState::from_records(&silences, &nflog).encode_to_vec()
    }

    /// Merges a peer's full state: how many records were bad, and whether
    /// anything changed.
    fn merge_full(&self, buf: &[u8], now: Timestamp) -> Result<(u64, bool), String> {
        let fs = FullState::decode_from(buf).map_err(|e| e.to_string())?;
        let (mut invalid, mut changed) = (0, false);
        for part in &fs.parts {
            if part.key != SILENCES && part.key != NFLOG {
                tracing::debug!(key = %part.key, "unknown state in a peer's full state");
                continue;
            }
            match gossip::records(part) {
                Ok(records) => {
                    for g in records {
                        changed |= self.merge(g, now);
                    }
                }
                Err(e) => {
                    invalid += 1;
                    tracing::warn!(key = %part.key, err = %e, "bad part in a peer's full state");
                }
            }
        }
        Ok((invalid, changed))
    }
}

/// Message counters for `/metrics`.
#[derive(Default)]
pub struct PeerMetrics {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub invalid: AtomicU64,
    pub pushpull: AtomicU64,
    /// memberlist's awareness score (`alertmanager_cluster_health_score`):
    /// 0 while this node's probes and refutations go well.
    pub health: AtomicU64,
    /// Only moves with `--cluster.tls-config`.
    pub tls: Arc<TlsStats>,
    /// Packets dropped because the gossip loop's queue was full.
    pub dropped: AtomicU64,
}

/// Another member as this node knows it.
#[derive(Clone, Debug)]
struct Known {
    addr: SocketAddr,
    herald: bool,
}

struct Shared {
    name: String,
    addr: SocketAddr,
    /// The other members, alive or suspect: what memberlist's `Members()`
    /// counts, so positions agree with Alertmanager's.
    members: Mutex<HashMap<String, Known>>,
    /// Other nodes' claims on notifications they are delivering.
    claims: Mutex<HashMap<String, gossip::Claim>>,
    /// Members that left or failed, with when: reconnected to every
    /// `--cluster.reconnect-interval` until `--cluster.reconnect-timeout`.
    failed: Mutex<HashMap<String, (SocketAddr, std::time::Instant)>>,
    settled: watch::Sender<bool>,
    /// Bumped whenever a claim is taken in, a member comes or goes, or a
    /// peer's state is merged: what a node waiting on a claim waits for.
    changes: watch::Sender<()>,
    metrics: PeerMetrics,
    /// Cancelled once the leave message went out at shutdown.
    left: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panicked holder; the maps stay usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(name: String, addr: SocketAddr) -> Shared {
        Shared {
            name,
            addr,
            members: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            settled: watch::Sender::new(false),
            changes: watch::Sender::new(()),
            metrics: PeerMetrics::default(),
            left: CancellationToken::new(),
        }
    }

    fn other_members(&self) -> usize {
        lock(&self.members).len()
    }

    /// Records a peer's claim; false when it is stale, ours, or no newer
    /// than the one we hold.
    fn accept_claim(&self, c: gossip::Claim, now: Timestamp) -> bool {
        if c.until <= now || c.node == self.name {
            return false;
        }
        let mut claims = lock(&self.claims);
        claims.retain(|_, old| old.until > now);
        let id = format!("{}\0{}\0{:x}", c.key, c.node, c.hash);
        if claims.get(&id).is_some_and(|old| old.until >= c.until) {
            return false;
        }
        claims.insert(id, c);
        drop(claims);
        self.changed();
        true
    }

    /// Wakes whoever waits on `Peer::changes`.
    fn changed(&self) {
        self.changes.send_replace(());
    }

    /// A packet for the gossip loop; dropped (and counted) when its queue
    /// is full, never waited for: the socket reader must keep reading.
    /// A claim (a packet of one user message under Herald's claim key) is
    /// taken in at once rather than queued behind the membership traffic.
    fn deliver_packet(
        &self,
        label: &str,
        tx: &mpsc::Sender<Input>,
        from: SocketAddr,
        packet: Vec<u8>,
    ) {
        if let Some(c) = claim_of(label, &packet) {
            self.metrics.received.fetch_add(1, Ordering::Relaxed);
            self.accept_claim(c, Timestamp::now());
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Input::Packet(from, packet)) {
            let n = self.metrics.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // The 1st, 2nd, 4th, 8th... drop: seen, without a line per packet.
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    queue = INPUT_QUEUE,
                    "cluster input queue full, dropping packets"
                );
            }
        }
    }
}

/// The claim a packet carries when it is one user message of Herald's
/// claim key.
fn claim_of(label: &str, packet: &[u8]) -> Option<gossip::Claim> {
    // Looked at before any decoding: only a bare user message can be a
    // claim, and every other packet is decoded once, by the loop.
    let (got, rest) = packet::strip_label(packet).ok()?;
    if got != label.as_bytes() {
        return None;
    }
    let msg = packet::strip_crc(rest).ok()?;
    if msg.first() != Some(&(MessageType::User as u8)) {
        return None;
    }
    let p = Part::decode(&msg[1..]).ok()?;
    if p.key != gossip::CLAIMS {
        return None;
    }
    match gossip::records(&p).ok()?.pop()? {
        Gossip::Claim(c) => Some(c),
        _ => None,
    }
}

enum Input {
    Packet(SocketAddr, Vec<u8>),
    /// A local change to gossip.
    Broadcast(Gossip),
    /// A user message that came over a stream.
    User(Vec<u8>),
    TcpPing(u32, bool),
    /// The member list of a push/pull's other side.
    Remote(Vec<PushNodeState>),
    /// Our member list, for a push/pull.
    States(oneshot::Sender<Vec<PushNodeState>>),
}

/// A running cluster peer.
pub struct Peer {
    shared: Arc<Shared>,
    settings: ClusterSettings,
    tx: mpsc::Sender<Input>,
    transport: Arc<Transport>,
    tasks: Tasks,
}

/// A member as the status API shows it.
pub struct PeerInfo {
    pub name: String,
    pub address: String,
}

/// What the tasks of one peer share.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    settings: ClusterSettings,
    state: Arc<Replicated>,
    transport: Arc<Transport>,
    tx: mpsc::Sender<Input>,
    shutdown: CancellationToken,
    tasks: Tasks,
}

impl Peer {
    /// Binds the UDP and TCP sockets and starts the membership, its tasks
    /// on `tasks`. Must run inside the tokio runtime; everything stops with
    /// `shutdown` (the node then tells its peers it leaves).
    pub async fn start(
        settings: ClusterSettings,
        state: Replicated,
        shutdown: CancellationToken,
        tasks: Tasks,
    ) -> Result<Arc<Peer>, String> {
        let tcp = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cluster listen (tcp) {}: {e}", settings.listen))?;
        // Port 0 (a free port): UDP takes the port TCP got, and the node
        // advertises it, as memberlist does with its auto-bound port.
        let mut settings = settings;
        if settings.listen.port() == 0 {
            let port = tcp
                .local_addr()
                .map_err(|e| format!("cluster listen (tcp): {e}"))?
                .port();
            settings.listen.set_port(port);
            if settings.advertise.port() == 0 {
                settings.advertise.set_port(port);
            }
        }
        packet::label_header(&settings.label).map_err(|e| format!("--cluster.label: {e}"))?;
        let shared = Arc::new(Shared::new(settings.name.clone(), settings.advertise));
        let state = Arc::new(state);
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let transport = Arc::new(match &settings.tls {
            None => {
                let udp = Arc::new(
                    UdpSocket::bind(settings.listen)
                        .await
                        .map_err(|e| format!("cluster listen {}: {e}", settings.listen))?,
                );
                tasks.spawn(
                    "cluster UDP receiver",
                    recv_udp(
                        udp.clone(),
                        settings.label.clone(),
                        tx.clone(),
                        shared.clone(),
                        shutdown.clone(),
                    ),
                );
                Transport::Udp(udp)
            }
            Some(tls) => Transport::Tls(TlsLinks::new(
                tls.clone(),
                settings.advertise,
                shared.metrics.tls.clone(),
                settings.tcp_timeout,
                shutdown.clone(),
                tasks.clone(),
            )),
        });
        let ctx = Ctx {
            shared: shared.clone(),
            settings: settings.clone(),
            state,
            transport: transport.clone(),
            tx: tx.clone(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        };
        let peer = Arc::new(Peer {
            shared,
            settings: settings.clone(),
            tx,
            transport,
            tasks: tasks.clone(),
        });
        let mut cfg = members::Config::lan(settings.name.clone(), settings.advertise);
        cfg.meta = HERALD_META.to_vec();
        cfg.label = settings.label.clone();
        cfg.probe_interval = settings.probe_interval;
        cfg.probe_timeout = settings.probe_timeout;
        cfg.gossip_interval = settings.gossip_interval;
        // Alertmanager gossips to half its configured peers, at least 3.
        cfg.gossip_nodes = (settings.peers.len() / 2).max(3);
        cfg.user_retransmit_mult = cfg.gossip_nodes;
        cfg.udp_buffer = MAX_GOSSIP_PACKET;
        let m = Members::new(cfg, tokio::time::Instant::now(), rand::random());
        tasks.spawn("cluster TCP listener", serve_tcp(tcp, ctx.clone()));
        tasks.spawn("cluster gossip", run_members(m, rx, ctx.clone()));
        tasks.spawn("cluster join and push/pull", join_and_pushpull(ctx));
        tasks.spawn("cluster settle", settle(peer.clone(), shutdown));
        Ok(peer)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// This node's index among the members sorted by name, as
    /// Alertmanager's `Position` counts it (alive and suspect members):
    /// the wait stage holds notifications back
    /// `position × --cluster.peer-timeout`.
    pub fn position(&self) -> usize {
        lock(&self.shared.members)
            .keys()
            .filter(|n| n.as_str() < self.shared.name.as_str())
            .count()
    }

    pub fn peer_wait(&self) -> Duration {
        self.settings.peer_timeout * self.position() as u32
    }

    /// Every member, this node included, sorted by name.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let members = lock(&self.shared.members);
        let mut out: Vec<PeerInfo> = members
            .iter()
            .map(|(name, k)| PeerInfo {
                name: name.clone(),
                address: k.addr.to_string(),
            })
            .chain(std::iter::once(PeerInfo {
                name: self.shared.name.clone(),
                address: self.shared.addr.to_string(),
            }))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Some member is not a Herald node (its metadata says so). Herald's
    /// own dedup rules then step back to Alertmanager's: they read an
    /// entry's timestamp as its flush time, and Alertmanager's entries
    /// carry the time they were logged, after the delivery.
    pub fn alertmanager_member(&self) -> bool {
        lock(&self.shared.members).values().any(|k| !k.herald)
    }

    pub fn failed_peers(&self) -> usize {
        lock(&self.shared.failed).len()
    }

    pub fn ready(&self) -> bool {
        *self.shared.settled.borrow()
    }

    /// Waits until the cluster has settled (or `cancel` fires).
    pub async fn wait_ready(&self, cancel: &CancellationToken) {
        let mut settled = self.shared.settled.subscribe();
        tokio::select! {
            _ = settled.wait_for(|s| *s) => {}
            _ = cancel.cancelled() => {}
        }
    }

    /// Changes when a claim is taken in, a member joins or leaves, or a
    /// peer's silences or notification log are merged here: a node waiting
    /// on a peer's claim wakes on it rather than polling.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.shared.changes.subscribe()
    }

    /// Resolves once this node, shutting down, has told its peers it
    /// leaves.
    pub async fn left(&self) {
        self.shared.left.cancelled().await
    }

    /// True when peers talk over TLS (`--cluster.tls-config`).
    pub fn tls_enabled(&self) -> bool {
        self.settings.tls.is_some()
    }

    pub fn metrics(&self) -> &PeerMetrics {
        &self.shared.metrics
    }

    /// Tells the Herald members this node is delivering the notification
    /// `key` carrying the alerts `hash`, until `until` at the latest.
    /// Claims go straight to each of them in a packet of their own rather
    /// than into the broadcast queue: under load (hundreds of groups
    /// changing) a queued broadcast took over 300 ms to arrive, and two
    /// nodes claiming the same notification did not see each other in
    /// time. Alertmanager members do not claim and are not told.
    pub fn claim(&self, key: &str, hash: u64, until: Timestamp) {
        let Some(msg) = gossip::encode(&Gossip::Claim(gossip::Claim {
            key: key.to_string(),
            hash,
            node: self.shared.name.clone(),
            until,
        })) else {
            return;
        };
        let mut user = vec![MessageType::User as u8];
        user.extend(msg);
        let Ok(packet) = packet::encode_packet(&[user], &self.settings.label, true) else {
            return;
        };
        let targets: Vec<SocketAddr> = lock(&self.shared.members)
            .values()
            .filter(|k| k.herald)
            .map(|k| k.addr)
            .collect();
        for addr in targets {
            self.shared.metrics.sent.fetch_add(1, Ordering::Relaxed);
            self.transport.send_now(addr, packet.clone());
        }
    }

    /// A live member's unexpired claim on the same notification, if any;
    /// with `lower_only`, only from a member before this node in position
    /// order (the one that goes first when two claim at once).
    pub fn other_claim(&self, key: &str, hash: u64, lower_only: bool) -> Option<gossip::Claim> {
        let now = Timestamp::now();
        let members = lock(&self.shared.members);
        lock(&self.shared.claims)
            .values()
            .find(|c| {
                c.key == key
                    && c.hash == hash
                    && c.until > now
                    // A Herald member: a node that left and came back
                    // under its name as Alertmanager claims nothing.
                    && members.get(&c.node).is_some_and(|k| k.herald)
                    && (!lower_only || c.node.as_str() < self.shared.name.as_str())
            })
            .cloned()
    }

    /// How long a claim takes to reach the peers: two gossip rounds.
    pub fn claim_settle(&self) -> Duration {
        (self.settings.gossip_interval * 2).max(Duration::from_millis(20))
    }

    /// Gossips a local change (a silence set or expired here, a
    /// notification logged here).
    /// Never blocks the caller (an API request or a flush): while the
    /// gossip loop's queue is full a task waits for room; a local change
    /// is not dropped.
    pub fn broadcast(&self, g: &Gossip) {
        let g = match g {
            Gossip::Silence(s, e) => Gossip::Silence(s.clone(), *e),
            Gossip::Nflog(k, e) => Gossip::Nflog(k.clone(), e.clone()),
            Gossip::Claim(c) => Gossip::Claim(c.clone()),
        };
        if let Err(mpsc::error::TrySendError::Full(input)) = self.tx.try_send(Input::Broadcast(g)) {
            let tx = self.tx.clone();
            self.tasks.spawn("cluster broadcast", async move {
                let _ = tx.send(input).await;
            });
        }
    }
}

async fn recv_udp(
    udp: Arc<UdpSocket>,
    label: String,
    tx: mpsc::Sender<Input>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // Do not spin on a socket that keeps failing.
                    tracing::debug!(err = %e, "cluster receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        shared.deliver_packet(&label, &tx, from, buf[..n].to_vec());
    }
}

/// The membership's loop: it owns `Members`, feeds it packets and time,
/// and carries out what it asks.
async fn run_members(mut m: Members, mut rx: mpsc::Receiver<Input>, ctx: Ctx) {
    loop {
        let now = tokio::time::Instant::now();
        let deadline = m.next_deadline();
        let input = tokio::select! {
            i = rx.recv() => match i { Some(i) => Some(i), None => return },
            _ = tokio::time::sleep_until(deadline) => None,
            _ = ctx.shutdown.cancelled() => {
                m.leave(now);
                for o in m.take_out() {
                    if let Out::Packet { to, data } = o {
                        ctx.transport.send_last(to, data).await;
                    }
                }
                ctx.shared.left.cancel();
                return;
            }
        };
        let now = tokio::time::Instant::now();
        match input {
            None => m.tick(now),
            Some(Input::Packet(from, p)) => {
                if let Err(e) = m.handle_packet(from, &p, now) {
                    // A malformed packet is dropped and counted, never fatal.
                    ctx.shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(err = %e, %from, "cluster packet not handled");
                }
            }
            Some(Input::Broadcast(g)) => broadcast(&mut m, &ctx, &g),
            Some(Input::User(b)) => take_user(&mut m, &ctx, &b),
            Some(Input::TcpPing(seq, ok)) => m.tcp_ping_done(seq, ok),
            Some(Input::Remote(nodes)) => m.merge_remote(&nodes, now),
            Some(Input::States(reply)) => {
                let _ = reply.send(m.push_states());
            }
        }
        let outs = m.take_out();
        for o in outs {
            carry_out(&mut m, &ctx, o).await;
        }
        let metrics = &ctx.shared.metrics;
        metrics
            .health
            .store(m.health_score().max(0) as u64, Ordering::Relaxed);
    }
}

async fn carry_out(m: &mut Members, ctx: &Ctx, o: Out) {
    let shared = &ctx.shared;
    match o {
        Out::Packet { to, data } => {
            shared.metrics.sent.fetch_add(1, Ordering::Relaxed);
            ctx.transport.send(to, data).await;
        }
        Out::TcpPing {
            to,
            seq,
            ping,
            deadline,
        } => {
            let (c, tx) = (ctx.clone(), ctx.tx.clone());
            ctx.tasks.spawn("cluster TCP ping", async move {
                let run = async {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let mut conn = c.transport.open_stream(to, left).await?;
                    stream::tcp_ping(&mut conn, &c.settings.label, seq, &ping)
                        .await
                        .map_err(|e| e.to_string())
                };
                let ok = tokio::select! {
                    r = tokio::time::timeout_at(deadline, run) => matches!(r, Ok(Ok(true))),
                    _ = c.shutdown.cancelled() => return,
                };
                let _ = tx.send(Input::TcpPing(seq, ok)).await;
            });
        }
        Out::User(b) => take_user(m, ctx, &b),
        Out::Join(mem) => {
            lock(&shared.failed).remove(&mem.name);
            let new = lock(&shared.members)
                .insert(mem.name.clone(), known(&mem))
                .is_none();
            if new {
                tracing::info!(peer = %mem.name, addr = %mem.addr, "cluster peer joined");
                // A new member gets (and gives) the full state at once.
                let c = ctx.clone();
                ctx.tasks.spawn("cluster push/pull", async move {
                    tokio::select! {
                        _ = exchange(&c, mem.addr, false) => {}
                        _ = c.shutdown.cancelled() => {}
                    }
                });
            }
            shared.changed();
        }
        Out::Update(mem) => {
            lock(&shared.members).insert(mem.name.clone(), known(&mem));
        }
        Out::Leave(mem) => {
            lock(&shared.members).remove(&mem.name);
            // Its deliveries under way ended with it: a process that
            // comes back under the same name has claimed nothing yet.
            lock(&shared.claims).retain(|_, c| c.node != mem.name);
            lock(&shared.failed).insert(mem.name.clone(), (mem.addr, std::time::Instant::now()));
            tracing::info!(peer = %mem.name, addr = %mem.addr, state = ?mem.state, "cluster peer left or failed");
            shared.changed();
        }
    }
}

fn known(m: &Member) -> Known {
    Known {
        addr: m.addr,
        herald: m.meta == HERALD_META,
    }
}

/// Gossips a local change as Alertmanager's channels do: a part small
/// enough goes into the broadcast queue, a larger one to every member over
/// TCP at once.
fn broadcast(m: &mut Members, ctx: &Ctx, g: &Gossip) {
    let Some(msg) = gossip::encode(g) else {
        return;
    };
    if msg.len() > MAX_GOSSIP_PACKET / 2 {
        send_oversized(ctx, msg);
        return;
    }
    let key = g.key();
    m.broadcast_user(
        Topic::State {
            kind: key.kind,
            id: key.id,
        },
        key.version,
        msg,
    );
}

fn send_oversized(ctx: &Ctx, msg: Vec<u8>) {
    let targets: Vec<SocketAddr> = lock(&ctx.shared.members).values().map(|k| k.addr).collect();
    let msg = Arc::new(msg);
    for addr in targets {
        let (c, msg) = (ctx.clone(), msg.clone());
        ctx.tasks.spawn("cluster large broadcast", async move {
            let run = async {
                let mut conn = c
                    .transport
                    .open_stream(addr, c.settings.tcp_timeout)
                    .await?;
                stream::send_user(&mut conn, &c.settings.label, &msg)
                    .await
                    .map_err(|e| e.to_string())
            };
            tokio::select! {
                r = tokio::time::timeout(c.settings.tcp_timeout, run) => {
                    if !matches!(r, Ok(Ok(()))) {
                        tracing::debug!(peer = %addr, "sending a large broadcast failed");
                    }
                }
                _ = c.shutdown.cancelled() => {}
            }
        });
    }
}

/// A user message from a peer: claims are kept, records merged, and what
/// changed our state passed on (as Alertmanager's states re-broadcast
/// what they merged, oversized messages excepted: those reached everyone).
fn take_user(m: &mut Members, ctx: &Ctx, b: &[u8]) {
    let shared = &ctx.shared;
    shared.metrics.received.fetch_add(1, Ordering::Relaxed);
    let records = match gossip::decode(b) {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(err = %e, "bad gossip message");
            return;
        }
    };
    let now = Timestamp::now();
    let mut changed = false;
    let mut topic = None;
    for g in records {
        if let Gossip::Claim(c) = g {
            shared.accept_claim(c, now);
            continue;
        }
        let key = g.key();
        if ctx.state.merge(g, now) {
            changed = true;
            topic.get_or_insert(key);
        }
    }
    if changed {
        shared.changed();
        if b.len() <= MAX_GOSSIP_PACKET / 2 {
            if let Some(k) = topic {
                m.broadcast_user(
                    Topic::State {
                        kind: k.kind,
                        id: k.id,
                    },
                    k.version,
                    b.to_vec(),
                );
            }
        }
    }
}

/// Joins the configured peers until one answers, exchanges the full state
/// with a random member every `--cluster.pushpull-interval`, reconnects to
/// failed members every `--cluster.reconnect-interval` (forgetting them
/// after `--cluster.reconnect-timeout`), and every 15 s joins any
/// configured peer address that is not a member (Alertmanager's refresh).
async fn join_and_pushpull(ctx: Ctx) {
    let s = ctx.settings.clone();
    let started = std::time::Instant::now();
    let now = tokio::time::Instant::now();
    let mut next_pushpull = now + s.pushpull_interval;
    let mut next_reconnect = now + s.reconnect_interval;
    let mut next_refresh = now + REFRESH_INTERVAL;
    loop {
        let alone = ctx.shared.other_members() == 0;
        if alone && started.elapsed() < s.reconnect_timeout {
            for a in resolve_peers(&s).await {
                exchange(&ctx, a, true).await;
            }
        }
        let now = tokio::time::Instant::now();
        if now >= next_pushpull {
            next_pushpull = now + s.pushpull_interval;
            let alive: Vec<SocketAddr> =
                lock(&ctx.shared.members).values().map(|k| k.addr).collect();
            if !alive.is_empty() {
                let addr = alive[rand::random_range(0..alive.len())];
                exchange(&ctx, addr, false).await;
            }
        }
        if now >= next_reconnect {
            next_reconnect = now + s.reconnect_interval;
            let failed: Vec<SocketAddr> = {
                let mut f = lock(&ctx.shared.failed);
                f.retain(|_, (_, since)| since.elapsed() < s.reconnect_timeout);
                f.values().map(|(a, _)| *a).collect()
            };
            for a in failed {
                exchange(&ctx, a, true).await;
            }
        }
        if now >= next_refresh {
            next_refresh = now + REFRESH_INTERVAL;
            let members: Vec<SocketAddr> =
                lock(&ctx.shared.members).values().map(|k| k.addr).collect();
            for a in resolve_peers(&s).await {
                if !members.contains(&a) {
                    exchange(&ctx, a, true).await;
                }
            }
        }
        let wait = if alone {
            s.reconnect_interval.min(Duration::from_secs(1))
        } else {
            s.pushpull_interval.min(Duration::from_secs(1))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// The `--cluster.peer` addresses, resolved again on every call, this
/// node's own left out.
async fn resolve_peers(s: &ClusterSettings) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for p in &s.peers {
        if let Ok(addrs) = tokio::net::lookup_host(p.as_str()).await {
            out.extend(addrs.filter(|a| *a != s.advertise && *a != s.listen));
        }
    }
    out
}

/// Alertmanager's settle: ready once the member count held still for three
/// checks in a row (or at `--cluster.settle-timeout`).
async fn settle(peer: Arc<Peer>, shutdown: CancellationToken) {
    let interval = (peer.settings.gossip_interval * 10).max(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + peer.settings.settle_timeout;
    let (mut last, mut stable) = (usize::MAX, 0);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let n = peer.shared.other_members();
        stable = if n == last { stable + 1 } else { 0 };
        last = n;
        if stable >= 2 || tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    if peer.settings.full_state_before_ready {
        // Push/pull in either direction merges the peer's full state.
        // Alone at the settle deadline, there is nobody to wait for.
        loop {
            let pulled = peer.shared.metrics.pushpull.load(Ordering::Relaxed) > 0;
            let alone = peer.shared.other_members() == 0;
            if pulled {
                tracing::info!("merged a peer's full state into the recovered database");
                break;
            }
            if alone {
                tracing::warn!("the database was recovered and no peer answered by the settle timeout: notifying with what was recovered");
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
    tracing::info!(peers = last + 1, "gossip settled; proceeding");
    peer.shared.settled.send_replace(true);
}

/// Our member list, from the membership loop.
async fn local_states(ctx: &Ctx) -> Result<Vec<PushNodeState>, String> {
    let (tx, rx) = oneshot::channel();
    ctx.tx
        .send(Input::States(tx))
        .await
        .map_err(|_| "cluster stopped".to_string())?;
    rx.await.map_err(|_| "cluster stopped".to_string())
}

/// Everything we hold, encoded on the blocking pool (it grows with the
/// silences and the notification log).
async fn full_state(state: &Arc<Replicated>) -> Result<Vec<u8>, String> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.full_state())
        .await
        .map_err(|e| e.to_string())
}

/// Merges a peer's full state: thousands of records when it joins, so on
/// the blocking pool, not on a runtime worker.
async fn merge_state(ctx: &Ctx, buf: Vec<u8>) {
    let state = ctx.state.clone();
    let merged =
        tokio::task::spawn_blocking(move || state.merge_full(&buf, Timestamp::now())).await;
    let shared = &ctx.shared;
    match merged {
        Ok(Ok((invalid, changed))) => {
            shared.metrics.invalid.fetch_add(invalid, Ordering::Relaxed);
            if changed {
                shared.changed();
            }
        }
        Ok(Err(e)) => {
            shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(err = %e, "bad full state from a peer");
        }
        Err(e) => tracing::warn!(err = %e, "merging a peer's full state failed"),
    }
}

/// One push/pull we start (`pushPullNode`): our members and state out,
/// theirs in and merged.
async fn exchange(ctx: &Ctx, addr: SocketAddr, join: bool) {
    let s = &ctx.settings;
    let run = async {
        let mut conn = ctx.transport.open_stream(addr, s.tcp_timeout).await?;
        let nodes = local_states(ctx).await?;
        let ours = full_state(&ctx.state).await?;
        let remote = stream::push_pull(&mut conn, &s.label, &nodes, &ours, join)
            .await
            .map_err(|e| e.to_string())?;
        let _ = ctx.tx.send(Input::Remote(remote.nodes)).await;
        merge_state(ctx, remote.user_state).await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(s.tcp_timeout, run).await {
        Ok(Ok(())) => {
            ctx.shared.metrics.pushpull.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::debug!(peer = %addr, err = %e, "push/pull failed"),
        Err(_) => tracing::debug!(peer = %addr, "push/pull timed out"),
    }
}

/// Accepts peers' TCP connections: push/pulls, TCP pings and reliable
/// user messages, and with TLS the peers' packet connections too.
async fn serve_tcp(tcp: TcpListener, ctx: Ctx) {
    loop {
        let (conn, _) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: do not spin.
                    tracing::debug!(err = %e, "cluster accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = ctx.shutdown.cancelled() => return,
        };
        let c = ctx.clone();
        ctx.tasks.spawn("cluster TCP connection", async move {
            let mut conn: Box<dyn transport::Conn> = match c.settings.tls.clone() {
                None => Box::new(conn),
                Some(tls) => {
                    let incoming = transport::accept_tls(
                        &tls,
                        conn,
                        &c.shared.metrics.tls,
                        c.settings.tcp_timeout,
                        &c.shutdown,
                        // Packets name their sender: where memberlist answers
                        // when a message carries no source address.
                        |p, sender| c.shared.deliver_packet(&c.settings.label, &c.tx, sender, p),
                    )
                    .await;
                    match incoming {
                        Some(Incoming::Stream(s)) => s,
                        Some(Incoming::Packets) | None => return,
                    }
                }
            };
            tokio::select! {
                _ = answer_stream(&mut conn, &c) => {}
                _ = c.shutdown.cancelled() => {}
            }
        });
    }
}

/// The accepting side of a stream (`handleConn`).
async fn answer_stream(conn: &mut Box<dyn transport::Conn>, ctx: &Ctx) {
    let s = &ctx.settings;
    let run = async {
        let request = match stream::accept(conn, &s.label, &s.name).await {
            Ok(r) => r,
            Err(e) => {
                // Another cluster's (or a stranger's) stream: counted, as
                // its packets are.
                if !matches!(e, MlError::Io(_) | MlError::Truncated) {
                    ctx.shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e.to_string());
            }
        };
        match request {
            stream::Request::PushPull(remote) => {
                let nodes = local_states(ctx).await?;
                let ours = full_state(&ctx.state).await?;
                stream::answer_push_pull(conn, &nodes, &ours, remote.join)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = ctx.tx.send(Input::Remote(remote.nodes)).await;
                merge_state(ctx, remote.user_state).await;
                ctx.shared.metrics.pushpull.fetch_add(1, Ordering::Relaxed);
            }
            stream::Request::Ping(_) => {}
            stream::Request::User(b) => {
                let _ = ctx.tx.send(Input::User(b)).await;
            }
        }
        Ok::<(), String>(())
    };
    match tokio::time::timeout(s.tcp_timeout, run).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(err = %e, "cluster stream from a peer failed"),
        Err(_) => tracing::debug!("cluster stream from a peer timed out"),
    }
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.shared.name)
            .finish()
    }
}
