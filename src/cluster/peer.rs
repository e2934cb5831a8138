//! A cluster peer: SWIM membership with the `foca` crate over UDP (or TLS,
//! see `transport`), the replicated states (silences, notification log)
//! gossiped as foca custom broadcasts, full-state push/pull over TCP on join
//! and periodically, and the settle and position logic the notification
//! pipeline waits on.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{
    BroadcastHandler, Foca, Identity, Invalidates, Notification, PostcardCodec, Runtime, Timer,
};
use jiff::Timestamp;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::gossip::{self, Gossip};
use super::transport::{self, ClusterTls, Incoming, TlsLinks, TlsStats, Transport};
use crate::nflog::NotificationLog;
use crate::silence::Silences;
use crate::tasks::Tasks;

/// Inputs queued for the gossip loop. memberlist queues incoming gossip
/// the same way (`HandoffQueueDepth`, 1024) and drops what arrives while
/// the queue is full: a node that cannot keep up loses packets, as UDP
/// would, instead of growing without bound or stalling the socket reader.
/// Timers and local changes wait for room; only packets are dropped.
const INPUT_QUEUE: usize = 1024;

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

/// A member's identity: where it listens, its name (positions are by name)
/// and a bump that foca raises when the node rejoins under the same name.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    pub addr: SocketAddr,
    pub name: String,
    pub bump: u16,
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.bump)
    }
}

impl Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// What foca asked for while handling one event.
#[derive(Default)]
struct Actions {
    sends: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Timer<NodeId>, Duration)>,
    ups: Vec<NodeId>,
    downs: Vec<NodeId>,
}

impl Runtime<NodeId> for Actions {
    fn notify(&mut self, n: Notification<'_, NodeId>) {
        match n {
            Notification::MemberUp(id) => self.ups.push(id.clone()),
            Notification::MemberDown(id) => self.downs.push(id.clone()),
            Notification::Rename(old, new) => {
                self.downs.push(old.clone());
                self.ups.push(new.clone());
            }
            _ => {}
        }
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((event, after));
    }
}

/// The states a peer replicates, and the merges foca's broadcasts and the
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
            // Claims are not state; the broadcast handler keeps them.
            Gossip::Claim(_) => Ok(false),
        };
        r.unwrap_or_else(|e| {
            tracing::warn!(err = %e, "merging gossip failed");
            false
        })
    }

    /// Everything we hold, for a push/pull exchange.
    fn full_state(&self) -> Vec<u8> {
        let mut msgs: Vec<Vec<u8>> = self
            .silences
            .snapshot()
            .into_iter()
            .map(|(s, exp)| gossip::encode(&Gossip::Silence((*s).clone(), exp)))
            .collect();
        msgs.extend(
            self.nflog
                .snapshot()
                .into_iter()
                .map(|(k, e)| gossip::encode(&Gossip::Nflog(k, e))),
        );
        gossip::frame_all(&msgs)
    }
}

/// foca's custom broadcast handler: a broadcast is passed on while it
/// changes the state of the nodes it reaches.
struct Handler {
    state: Arc<Replicated>,
    shared: Arc<Shared>,
}

#[derive(Debug, thiserror::Error)]
#[error("bad gossip message: {0}")]
pub struct GossipError(String);

impl BroadcastHandler<NodeId> for Handler {
    type Key = gossip::Key;
    type Error = GossipError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeId>,
    ) -> Result<Option<gossip::Key>, GossipError> {
        let g = gossip::decode(data).map_err(|e| {
            self.shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            GossipError(e)
        })?;
        let key = g.key();
        if sender.is_none() {
            // Our own change, already stored: send it.
            return Ok(Some(key));
        }
        self.shared.metrics.received.fetch_add(1, Ordering::Relaxed);
        let now = Timestamp::now();
        if let Gossip::Claim(c) = g {
            // Claims now go to each member directly (`Peer::claim`); a
            // gossiped one is still honoured.
            return Ok(self.shared.accept_claim(c, now).then_some(key));
        }
        let changed = self.state.merge(g, now);
        if changed {
            self.shared.changed();
        }
        Ok(changed.then_some(key))
    }
}

impl Invalidates for gossip::Key {
    fn invalidates(&self, other: &Self) -> bool {
        self.kind == other.kind && self.id == other.id && self.version >= other.version
    }
}

/// Message counters for `/metrics`.
#[derive(Default)]
pub struct PeerMetrics {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub invalid: AtomicU64,
    pub pushpull: AtomicU64,
    /// Members this node suspects right now (`alertmanager_cluster_health_score`).
    pub suspects: AtomicU64,
    /// Only moves with `--cluster.tls-config`.
    pub tls: Arc<TlsStats>,
    /// Packets dropped because the gossip loop's queue was full.
    pub dropped: AtomicU64,
}

struct Shared {
    me: NodeId,
    members: Mutex<HashMap<String, NodeId>>,
    /// Other nodes' claims on notifications they are delivering.
    claims: Mutex<HashMap<String, gossip::Claim>>,
    failed: Mutex<HashMap<String, NodeId>>,
    settled: watch::Sender<bool>,
    /// Bumped whenever a claim is taken in, a member comes or goes, or a
    /// peer's state is merged: what a node waiting on a claim waits for.
    changes: watch::Sender<()>,
    metrics: PeerMetrics,
    /// Cancelled once the leave message went out at shutdown.
    left: CancellationToken,
}

impl Shared {
    /// A node alone, not settled yet.
    fn new(me: NodeId) -> Shared {
        Shared {
            me,
            members: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            settled: watch::Sender::new(false),
            changes: watch::Sender::new(()),
            metrics: PeerMetrics::default(),
            left: CancellationToken::new(),
        }
    }

    /// How many other members this node knows of.
    fn other_members(&self) -> usize {
        self.members.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Where the other members listen.
    fn member_addrs(&self) -> Vec<SocketAddr> {
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|id| id.addr)
            .collect()
    }

    /// Records a peer's claim; false when it is stale, ours, or no newer
    /// than the one we hold.
    fn accept_claim(&self, c: gossip::Claim, now: Timestamp) -> bool {
        if c.until <= now || c.node == self.me.name {
            return false;
        }
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
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
    fn queue_packet(&self, tx: &mpsc::Sender<Input>, packet: Vec<u8>) {
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Input::Packet(packet)) {
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

enum Input {
    Packet(Vec<u8>),
    Timer(Timer<NodeId>),
    Broadcast(Vec<u8>),
    Announce(SocketAddr),
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

impl Peer {
    /// Binds the UDP and TCP sockets and starts gossiping, its tasks on
    /// `tasks`. Must run inside the tokio runtime; everything stops with
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
        let me = NodeId {
            addr: settings.advertise,
            name: settings.name.clone(),
            bump: 0,
        };
        let shared = Arc::new(Shared::new(me.clone()));
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
        let peer = Arc::new(Peer {
            shared: shared.clone(),
            settings: settings.clone(),
            tx: tx.clone(),
            transport: transport.clone(),
            tasks: tasks.clone(),
        });
        let mut config = foca::Config::new_lan(NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN));
        config.probe_period = settings.probe_interval;
        config.probe_rtt = settings.probe_timeout.min(settings.probe_interval / 2);
        // memberlist's suspicion timeout for clusters under ten nodes:
        // SuspicionMult (4) probe intervals.
        config.suspect_to_down_after = settings.probe_interval * 4;
        if let Some(g) = config.periodic_gossip.as_mut() {
            g.frequency = settings.gossip_interval;
        }
        let foca = Foca::with_custom_broadcast(
            me,
            config,
            rand::rngs::SmallRng::seed_from_u64(rand::random()),
            PostcardCodec,
            Handler {
                state: state.clone(),
                shared: shared.clone(),
            },
        );
        tasks.spawn(
            "cluster TCP listener",
            serve_tcp(
                tcp,
                state.clone(),
                settings.clone(),
                shared.clone(),
                tx.clone(),
                shutdown.clone(),
                tasks.clone(),
            ),
        );
        tasks.spawn(
            "cluster gossip",
            run_foca(
                foca,
                transport.clone(),
                rx,
                tx.clone(),
                state.clone(),
                settings.clone(),
                shared.clone(),
                shutdown.clone(),
                tasks.clone(),
            ),
        );
        tasks.spawn(
            "cluster join and push/pull",
            join_and_pushpull(peer.clone(), state, transport, shutdown.clone()),
        );
        tasks.spawn("cluster settle", settle(peer.clone(), shutdown));
        Ok(peer)
    }

    pub fn name(&self) -> &str {
        &self.shared.me.name
    }

    /// This node's index among the members sorted by name: the wait stage
    /// holds notifications back `position × --cluster.peer-timeout`.
    pub fn position(&self) -> usize {
        let members = self
            .shared
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        members
            .keys()
            .filter(|n| n.as_str() < self.shared.me.name.as_str())
            .count()
    }

    pub fn peer_wait(&self) -> Duration {
        self.settings.peer_timeout * self.position() as u32
    }

    /// Every member, this node included, sorted by name.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let members = self
            .shared
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<PeerInfo> = members
            .values()
            .chain(std::iter::once(&self.shared.me))
            .map(|m| PeerInfo {
                name: m.name.clone(),
                address: m.addr.to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn failed_peers(&self) -> usize {
        self.shared
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
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

    /// Tells the peers this node is delivering the notification `key`
    /// carrying the alerts `hash`, until `until` at the latest.
    /// Claims go straight to every member rather than into foca's
    /// broadcast queue: under load (hundreds of groups changing) a
    /// broadcast took over 300 ms to arrive, and two nodes claiming the
    /// same notification did not see each other in time.
    pub fn claim(&self, key: &str, hash: u64, until: Timestamp) {
        let msg = gossip::encode(&Gossip::Claim(gossip::Claim {
            key: key.to_string(),
            hash,
            node: self.shared.me.name.clone(),
            until,
        }));
        let packet = frame(&self.settings.label, DIRECT, &msg);
        for addr in self.shared.member_addrs() {
            self.shared.metrics.sent.fetch_add(1, Ordering::Relaxed);
            self.transport.send_now(addr, packet.clone());
        }
    }

    /// A live member's unexpired claim on the same notification, if any;
    /// with `lower_only`, only from a member before this node in position
    /// order (the one that goes first when two claim at once).
    pub fn other_claim(&self, key: &str, hash: u64, lower_only: bool) -> Option<gossip::Claim> {
        let now = Timestamp::now();
        let members = self
            .shared
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared
            .claims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|c| {
                c.key == key
                    && c.hash == hash
                    && c.until > now
                    && members.contains_key(&c.node)
                    && (!lower_only || c.node.as_str() < self.shared.me.name.as_str())
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
        let input = Input::Broadcast(gossip::encode(g));
        if let Err(mpsc::error::TrySendError::Full(input)) = self.tx.try_send(input) {
            let tx = self.tx.clone();
            self.tasks.spawn("cluster broadcast", async move {
                let _ = tx.send(input).await;
            });
        }
    }
}

/// After the label, a packet says what it carries: a foca (SWIM) packet
/// or one of Herald's messages sent to a member directly (claims).
const SWIM: u8 = 0;
const DIRECT: u8 = 1;

fn frame(label: &str, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + 1 + data.len());
    out.extend_from_slice(label.as_bytes());
    out.push(kind);
    out.extend_from_slice(data);
    out
}

fn frame_packet(label: &str, data: &[u8]) -> Vec<u8> {
    frame(label, SWIM, data)
}

/// Strips the cluster label; a packet of another cluster is `None`.
fn unframe_packet<'a>(label: &str, data: &'a [u8]) -> Option<&'a [u8]> {
    let rest = data.strip_prefix(label.as_bytes())?;
    rest.strip_prefix(&[0])
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
        let n = tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(e) => {
                    // Do not spin on a socket that keeps failing.
                    tracing::debug!(err = %e, "cluster receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        deliver_packet(&label, &buf[..n], &tx, &shared);
    }
}

/// Hands a received packet of our cluster to foca, or takes in a direct
/// message at once (it does not queue behind SWIM traffic); packets of
/// other clusters and malformed ones are counted.
fn deliver_packet(label: &str, packet: &[u8], tx: &mpsc::Sender<Input>, shared: &Shared) {
    let body = packet.strip_prefix(label.as_bytes());
    match body.and_then(<[u8]>::split_first) {
        Some((&SWIM, d)) => shared.queue_packet(tx, d.to_vec()),
        Some((&DIRECT, d)) => match gossip::decode(d) {
            Ok(Gossip::Claim(c)) => {
                shared.metrics.received.fetch_add(1, Ordering::Relaxed);
                shared.accept_claim(c, Timestamp::now());
            }
            _ => {
                shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            }
        },
        _ => {
            shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_foca(
    mut foca: Foca<NodeId, PostcardCodec, rand::rngs::SmallRng, Handler>,
    transport: Arc<Transport>,
    mut rx: mpsc::Receiver<Input>,
    tx: mpsc::Sender<Input>,
    state: Arc<Replicated>,
    settings: ClusterSettings,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tasks: Tasks,
) {
    loop {
        let input = tokio::select! {
            i = rx.recv() => match i { Some(i) => i, None => return },
            _ = shutdown.cancelled() => {
                let mut acts = Actions::default();
                let _ = foca.leave_cluster(&mut acts);
                for (to, data) in acts.sends {
                    transport.send_last(to, frame_packet(&settings.label, &data)).await;
                }
                shared.left.cancel();
                return;
            }
        };
        let mut acts = Actions::default();
        // A change too large for a packet goes to every member over TCP.
        if let Input::Broadcast(b) = &input {
            if b.len() + settings.label.len() + 1 > MAX_BROADCAST_BYTES {
                for addr in shared.member_addrs() {
                    let (state, settings, shared, transport) = (
                        state.clone(),
                        settings.clone(),
                        shared.clone(),
                        transport.clone(),
                    );
                    let one = gossip::frame_all(std::slice::from_ref(b));
                    let stop = shutdown.clone();
                    tasks.spawn("cluster large broadcast", async move {
                        tokio::select! {
                            _ = exchange(addr, &state, &settings, &shared, &transport, Some(one)) => {}
                            _ = stop.cancelled() => {}
                        }
                    });
                }
                continue;
            }
        }
        let is_packet = matches!(input, Input::Packet(_));
        // Merges queue their writes to SQLite without waiting for them.
        let result = match input {
            Input::Packet(d) => foca.handle_data(&d, &mut acts),
            Input::Timer(t) => foca.handle_timer(t, &mut acts),
            Input::Broadcast(b) => foca
                .add_broadcast(&b)
                .map(|_| ())
                .and_then(|()| foca.broadcast(&mut acts)),
            Input::Announce(addr) => foca.announce(
                NodeId {
                    addr,
                    name: String::new(),
                    bump: 0,
                },
                &mut acts,
            ),
        };
        if let Err(e) = result {
            // A malformed packet is dropped and counted, never fatal.
            if is_packet {
                shared.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(err = %e, "cluster message not handled");
        }
        for (to, data) in acts.sends {
            shared.metrics.sent.fetch_add(1, Ordering::Relaxed);
            transport
                .send(to, frame_packet(&settings.label, &data))
                .await;
        }
        let suspects = foca
            .iter_membership_state()
            .filter(|m| m.state() == foca::State::Suspect)
            .count();
        shared
            .metrics
            .suspects
            .store(suspects as u64, Ordering::Relaxed);
        for (t, after) in acts.timers {
            let (tx, stop) = (tx.clone(), shutdown.clone());
            tasks.spawn("cluster timer", async move {
                tokio::select! {
                    _ = tokio::time::sleep(after) => {
                        let _ = tx.send(Input::Timer(t)).await;
                    }
                    _ = stop.cancelled() => {}
                }
            });
        }
        let membership_changed = !acts.downs.is_empty() || !acts.ups.is_empty();
        for id in acts.downs {
            if id == shared.me || id.name.is_empty() {
                continue;
            }
            shared
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id.name);
            shared
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.name.clone(), id.clone());
            tracing::info!(peer = %id.name, addr = %id.addr, "cluster peer left or failed");
        }
        for id in acts.ups {
            if id == shared.me || id.name.is_empty() {
                continue;
            }
            shared
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id.name);
            let new = shared
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.name.clone(), id.clone())
                .is_none();
            if new {
                tracing::info!(peer = %id.name, addr = %id.addr, "cluster peer joined");
                // A new member gets (and gives) the full state at once.
                let (state, settings, shared, transport) = (
                    state.clone(),
                    settings.clone(),
                    shared.clone(),
                    transport.clone(),
                );
                let stop = shutdown.clone();
                tasks.spawn("cluster push/pull", async move {
                    tokio::select! {
                        _ = exchange(id.addr, &state, &settings, &shared, &transport, None) => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        }
        if membership_changed {
            shared.changed();
        }
    }
}

/// Announces to the configured peers until one answers, then exchanges the
/// full state with a random member every `--cluster.pushpull-interval`.
async fn join_and_pushpull(
    peer: Arc<Peer>,
    state: Arc<Replicated>,
    transport: Arc<Transport>,
    shutdown: CancellationToken,
) {
    let s = peer.settings.clone();
    let started = std::time::Instant::now();
    let mut next_pushpull = tokio::time::Instant::now() + s.pushpull_interval;
    loop {
        let alone = peer.shared.other_members() == 0;
        if alone && started.elapsed() < s.reconnect_timeout {
            for p in &s.peers {
                // Names are resolved again on every attempt.
                if let Ok(addrs) = tokio::net::lookup_host(p.as_str()).await {
                    for a in addrs.filter(|a| *a != s.advertise && *a != s.listen) {
                        let _ = peer.tx.send(Input::Announce(a)).await;
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= next_pushpull {
            next_pushpull = tokio::time::Instant::now() + s.pushpull_interval;
            let all = peer.shared.member_addrs();
            let target = (!all.is_empty()).then(|| all[rand::random_range(0..all.len())]);
            if let Some(addr) = target {
                exchange(addr, &state, &s, &peer.shared, &transport, None).await;
            }
        }
        let wait = if alone {
            s.reconnect_interval.min(Duration::from_secs(1))
        } else {
            s.pushpull_interval.min(Duration::from_secs(1))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
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

/// Broadcasts larger than this do not fit in foca's packets (1400 bytes,
/// less its headers) and are sent over TCP instead.
const MAX_BROADCAST_BYTES: usize = 1000;

/// Largest full state accepted in one exchange.
const MAX_STATE_BYTES: usize = 256 << 20;

async fn read_state(stream: &mut (impl AsyncRead + Unpin), label: &str) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_STATE_BYTES {
        return Err(format!("state of {len} bytes refused"));
    }
    let mut buf = vec![0u8; len];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    unframe_packet(label, &buf)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "state from another cluster (label)".to_string())
}

async fn write_state(
    stream: &mut (impl AsyncWrite + Unpin),
    label: &str,
    state: &[u8],
) -> Result<(), String> {
    let framed = frame_packet(label, state);
    let len = u32::try_from(framed.len()).map_err(|_| "state too large".to_string())?;
    stream
        .write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(&framed).await.map_err(|e| e.to_string())
}

/// Merges a peer's full state: thousands of messages when it joins, so on
/// the blocking pool, not on a runtime worker.
async fn merge_state(state: &Arc<Replicated>, buf: Vec<u8>, shared: &Shared) {
    let state = state.clone();
    let merged = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let msgs = gossip::unframe_all(&buf)?;
        let (mut invalid, mut changed) = (0, false);
        for m in msgs {
            match gossip::decode(&m) {
                Ok(g) => {
                    changed |= state.merge(g, now);
                }
                Err(_) => invalid += 1,
            }
        }
        Ok::<(u64, bool), String>((invalid, changed))
    })
    .await;
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

/// Everything we hold, encoded on the blocking pool (it grows with the
/// silences and the notification log).
async fn full_state(state: &Arc<Replicated>) -> Result<Vec<u8>, String> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.full_state())
        .await
        .map_err(|e| e.to_string())
}

/// One TCP exchange: we send `payload` (our full state when `None`), the
/// peer answers with its full state, and we merge it.
async fn exchange(
    addr: SocketAddr,
    state: &Arc<Replicated>,
    s: &ClusterSettings,
    shared: &Shared,
    transport: &Transport,
    payload: Option<Vec<u8>>,
) {
    let run = async {
        let mut stream = transport.open_stream(addr, s.tcp_timeout).await?;
        let ours = match payload {
            Some(p) => p,
            None => full_state(state).await?,
        };
        write_state(&mut stream, &s.label, &ours).await?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let theirs = read_state(&mut stream, &s.label).await?;
        merge_state(state, theirs, shared).await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(s.tcp_timeout, run).await {
        Ok(Ok(())) => {
            shared.metrics.pushpull.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::debug!(peer = %addr, err = %e, "push/pull failed"),
        Err(_) => tracing::debug!(peer = %addr, "push/pull timed out"),
    }
}

/// Accepts peers' TCP connections: push/pull exchanges, and with TLS the
/// peers' packet connections too.
async fn serve_tcp(
    tcp: TcpListener,
    state: Arc<Replicated>,
    s: ClusterSettings,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Input>,
    shutdown: CancellationToken,
    tasks: Tasks,
) {
    loop {
        let (stream, _) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: do not spin.
                    tracing::debug!(err = %e, "cluster accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let (state, s, shared, tx, shutdown) = (
            state.clone(),
            s.clone(),
            shared.clone(),
            tx.clone(),
            shutdown.clone(),
        );
        tasks.spawn("cluster TCP connection", async move {
            let mut stream: Box<dyn transport::Conn> = match s.tls.clone() {
                None => Box::new(stream),
                Some(tls) => {
                    let incoming = transport::accept_tls(
                        &tls,
                        stream,
                        &shared.metrics.tls,
                        s.tcp_timeout,
                        &shutdown,
                        |p, _from| deliver_packet(&s.label, &p, &tx, &shared),
                    )
                    .await;
                    match incoming {
                        Some(Incoming::Stream(c)) => c,
                        Some(Incoming::Packets) | None => return,
                    }
                }
            };
            tokio::select! {
                _ = answer_exchange(&mut stream, &state, &s, &shared) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// The answering side of a push/pull exchange: their state in, ours out.
async fn answer_exchange(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    state: &Arc<Replicated>,
    s: &ClusterSettings,
    shared: &Shared,
) {
    let run = async {
        let theirs = read_state(stream, &s.label).await?;
        let ours = full_state(state).await?;
        write_state(stream, &s.label, &ours).await?;
        stream.flush().await.map_err(|e| e.to_string())?;
        merge_state(state, theirs, shared).await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(s.tcp_timeout, run).await {
        Ok(Ok(())) => {
            shared.metrics.pushpull.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::debug!(err = %e, "push/pull from a peer failed"),
        Err(_) => tracing::debug!("push/pull from a peer timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(name: &str) -> Shared {
        let id = |n: &str| NodeId {
            addr: "127.0.0.1:9094".parse().expect("address"),
            name: n.to_string(),
            bump: 0,
        };
        let s = Shared::new(id(name));
        s.members
            .lock()
            .expect("members")
            .insert("a".to_string(), id("a"));
        s
    }

    fn claim(node: &str, hash: u64, secs: i64) -> Vec<u8> {
        gossip::encode(&Gossip::Claim(gossip::Claim {
            key: "g/r".into(),
            hash,
            node: node.into(),
            until: Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .expect("time"),
        }))
    }

    #[test]
    fn direct_claims_are_taken_in_at_once_and_bad_packets_counted() {
        let s = shared("b");
        let (tx, mut rx) = mpsc::channel(INPUT_QUEUE);
        deliver_packet("l", &frame("l", DIRECT, &claim("a", 7, 60)), &tx, &s);
        deliver_packet("l", &frame("l", DIRECT, &claim("a", 8, 60)), &tx, &s);
        assert!(rx.try_recv().is_err(), "claims do not queue behind SWIM");
        assert_eq!(
            s.claims.lock().expect("claims").len(),
            2,
            "one node's claims on two contents are both kept"
        );
        // Ours, already over, or of another cluster: not taken.
        deliver_packet("l", &frame("l", DIRECT, &claim("b", 9, 60)), &tx, &s);
        deliver_packet("l", &frame("l", DIRECT, &claim("a", 9, -1)), &tx, &s);
        deliver_packet("l", &frame("x", DIRECT, &claim("a", 9, 60)), &tx, &s);
        assert_eq!(s.claims.lock().expect("claims").len(), 2);
        assert_eq!(
            s.metrics.invalid.load(Ordering::Relaxed),
            1,
            "foreign label"
        );
        deliver_packet("l", &frame("l", DIRECT, b"\xff\x00"), &tx, &s);
        deliver_packet("l", b"l", &tx, &s);
        assert_eq!(s.metrics.invalid.load(Ordering::Relaxed), 3);
        deliver_packet("l", &frame("l", SWIM, b"swim"), &tx, &s);
        assert!(matches!(rx.try_recv(), Ok(Input::Packet(p)) if p == b"swim"));
    }

    #[tokio::test]
    async fn a_full_input_queue_drops_packets_and_counts_them_but_keeps_local_changes() {
        let s = shared("b");
        let (tx, mut rx) = mpsc::channel(2);
        for p in [b"p1", b"p2", b"p3", b"p4"] {
            deliver_packet("l", &frame("l", SWIM, p), &tx, &s);
        }
        assert_eq!(s.metrics.dropped.load(Ordering::Relaxed), 2);
        // A waiting sender (a timer, a local change) gets the next free
        // slot before any packet arriving meanwhile.
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(Input::Broadcast(b"local".to_vec())).await.is_ok() }
        });
        tokio::task::yield_now().await;
        assert!(matches!(rx.recv().await, Some(Input::Packet(p)) if p == b"p1"));
        deliver_packet("l", &frame("l", SWIM, b"p5"), &tx, &s);
        assert!(waiting.await.expect("sender task"));
        assert!(matches!(rx.recv().await, Some(Input::Packet(p)) if p == b"p2"));
        assert!(matches!(rx.recv().await, Some(Input::Broadcast(b)) if b == b"local"));
        assert_eq!(
            s.metrics.dropped.load(Ordering::Relaxed),
            3,
            "p5 found no room"
        );
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_claim_taken_in_wakes_those_waiting_for_changes() {
        let s = shared("b");
        let mut changes = s.changes.subscribe();
        assert!(!changes.has_changed().expect("sender alive"));
        assert!(s.accept_claim(
            gossip::Claim {
                key: "g/r".into(),
                hash: 1,
                node: "a".into(),
                until: Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(60))
                    .expect("time"),
            },
            Timestamp::now(),
        ));
        tokio::time::timeout(Duration::from_secs(5), changes.changed())
            .await
            .expect("woken by the claim")
            .expect("sender alive");
        // A stale claim changes nothing and wakes nobody.
        assert!(!s.accept_claim(
            gossip::Claim {
                key: "g/r".into(),
                hash: 2,
                node: "a".into(),
                until: Timestamp::now(),
            },
            Timestamp::now(),
        ));
        assert!(!changes.has_changed().expect("sender alive"));
    }
}
