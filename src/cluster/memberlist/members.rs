//! Memberlist's membership: SWIM with Lifeguard's suspicion and awareness,
//! as HashiCorp memberlist (0.5) runs it inside every Alertmanager, so that
//! Herald is a member Alertmanager's nodes cannot tell from one of their
//! own.
//!
//! It is sans-IO: the peer's loop feeds it packets, the results of TCP
//! fallback pings and push/pulls, and the time; it answers with packets to
//! send, pings to make over TCP, user messages received and membership
//! events. Nothing here waits, so a paused clock drives it in tests.
//!
//! The behaviour follows memberlist's `state.go`, `net.go`, `queue.go`
//! and `suspicion.go`: a probe per `ProbeInterval` to the next member of a
//! shuffled list, indirect pings through three others and a TCP ping when
//! the direct ping goes unanswered for `ProbeTimeout`, suspicion on
//! failure with a timeout that shrinks as other members confirm it, dead
//! after the timeout, refutation of accusations against ourselves with a
//! higher incarnation, gossip of the pending broadcasts to three random
//! members every `GossipInterval`, and every outgoing ping and ack
//! carrying broadcasts in a compound message.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::message::{
    self, Accusation, Ack, Alive, Dead, IndirectPing, MessageType, Nack, NodeState, Ping,
    PushNodeState, Suspect, VSN,
};
use super::packet;
use super::stream::{ip_bytes, ip_of};
use super::Error;

/// A compound message's header (type and count) and each part's length.
const COMPOUND_HEADER: usize = 2;
const COMPOUND_PART: usize = 2;
/// The CRC wrapper every packet to a protocol-5 member carries.
const CRC_OVERHEAD: usize = 5;

/// What memberlist's `DefaultLANConfig` and Alertmanager's flags set.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) name: String,
    /// Where the others reach us (`--cluster.advertise-address`).
    pub(crate) addr: SocketAddr,
    /// Carried in our alive messages; Alertmanager's is empty.
    pub(crate) meta: Vec<u8>,
    pub(crate) label: String,
    pub(crate) probe_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) gossip_interval: Duration,
    /// Alertmanager: half its `--cluster.peer`s, at least 3.
    pub(crate) gossip_nodes: usize,
    pub(crate) indirect_checks: usize,
    /// memberlist's own messages are sent `4 × ⌈log10(n+1)⌉` times.
    pub(crate) retransmit_mult: usize,
    /// Alertmanager's user broadcasts: `gossip_nodes × ⌈log10(n+1)⌉`.
    pub(crate) user_retransmit_mult: usize,
    pub(crate) suspicion_mult: u32,
    pub(crate) suspicion_max_timeout_mult: u32,
    pub(crate) gossip_to_the_dead: Duration,
    /// The largest packet: Alertmanager's `MaxGossipPacketSize`.
    pub(crate) udp_buffer: usize,
    pub(crate) awareness_max: i32,
    /// Broadcasts kept at most; Alertmanager prunes its queue to 4096.
    pub(crate) max_queued: usize,
}

impl Config {
    pub(crate) fn lan(name: String, addr: SocketAddr) -> Config {
        Config {
            name,
            addr,
            meta: Vec::new(),
            label: String::new(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            indirect_checks: 3,
            retransmit_mult: 4,
            user_retransmit_mult: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            gossip_to_the_dead: Duration::from_secs(30),
            udp_buffer: 1400,
            awareness_max: 8,
            max_queued: 4096,
        }
    }
}

/// A member as the rest of Herald sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) meta: Vec<u8>,
    pub(crate) incarnation: u32,
    pub(crate) state: NodeState,
    /// `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub(crate) vsn: Vec<u8>,
}

impl Member {
    fn dead_or_left(&self) -> bool {
        matches!(self.state, NodeState::Dead | NodeState::Left)
    }

    /// The highest protocol the member speaks (`PMax`).
    fn pmax(&self) -> u8 {
        self.vsn.get(1).copied().unwrap_or(0)
    }
}

/// What the loop must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Out {
    /// A whole packet (label, CRC and compound included).
    Packet { to: SocketAddr, data: Vec<u8> },
    /// memberlist's TCP fallback probe: dial `to`, send the encoded ping,
    /// and report through `tcp_ping_done` whether an ack came back before
    /// `deadline`.
    TcpPing {
        to: SocketAddr,
        seq: u32,
        ping: Vec<u8>,
        deadline: Instant,
    },
    /// A user message (Alertmanager's `clusterpb.Part`) for the delegate.
    User(Vec<u8>),
    /// A node became alive (it was dead, left or unknown).
    Join(Member),
    /// A node was declared dead or left.
    Leave(Member),
    /// A live node changed its metadata.
    Update(Member),
}

struct Node {
    m: Member,
    state_change: Instant,
}

/// Lifeguard's suspicion: the timeout starts at `max` and falls toward
/// `min` as independent members confirm the suspicion.
struct Suspicion {
    confirmers: HashSet<String>,
    k: u32,
    n: u32,
    min: Duration,
    max: Duration,
    /// Also the node's state change it is about: a refuted and
    /// re-suspected node has a newer one.
    start: Instant,
}

impl Suspicion {
    fn deadline(&self) -> Instant {
        if self.k < 1 {
            return self.start + self.min;
        }
        let frac = f64::from(self.n + 1).ln() / f64::from(self.k + 1).ln();
        let raw = self.max.as_secs_f64() - frac * (self.max - self.min).as_secs_f64();
        let timeout = Duration::from_secs_f64(raw.max(self.min.as_secs_f64()));
        self.start + timeout
    }

    /// True for a new confirmation (which is then re-gossiped).
    fn confirm(&mut self, from: &str) -> bool {
        if self.n >= self.k || !self.confirmers.insert(from.to_string()) {
            return false;
        }
        self.n += 1;
        true
    }
}

/// The probe in flight.
struct Probe {
    seq: u32,
    target: String,
    sent: Instant,
    /// When the direct ping counts as unanswered.
    indirect_at: Instant,
    /// When the probe fails.
    deadline: Instant,
    indirect_sent: bool,
    expected_nacks: usize,
    nacks: usize,
}

/// An indirect ping we make on another member's behalf.
struct Relay {
    reply_to: SocketAddr,
    their_seq: u32,
    nack_at: Option<Instant>,
    expires: Instant,
}

/// What a broadcast replaces: memberlist's messages about a node replace
/// older ones about it; Herald's state broadcasts replace older versions
/// of the same silence or entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    Node(String),
    State {
        kind: u8,
        id: String,
    },
    /// Never replaced (claims, Alertmanager-style unnamed broadcasts).
    None,
}

struct Queued {
    topic: Topic,
    /// For `Topic::State`: a newer version replaces, an older one is dropped.
    version: i128,
    msg: Vec<u8>,
    transmits: usize,
    id: u64,
}

/// memberlist's `TransmitLimitedQueue`: each broadcast goes out
/// `mult × ⌈log10(n+1)⌉` times, the least sent first, newest first among
/// equals.
#[derive(Default)]
struct Queue {
    items: Vec<Queued>,
    next_id: u64,
    pruned: u64,
}

impl Queue {
    fn push(&mut self, topic: Topic, version: i128, msg: Vec<u8>, max: usize) {
        if topic != Topic::None {
            if self
                .items
                .iter()
                .any(|q| q.topic == topic && q.version > version)
            {
                return;
            }
            self.items.retain(|q| q.topic != topic);
        }
        self.next_id += 1;
        self.items.push(Queued {
            topic,
            version,
            msg,
            transmits: 0,
            id: self.next_id,
        });
        if self.items.len() > max {
            // Drop the most sent, oldest first: they have had their turns.
            self.items
                .sort_by(|a, b| b.transmits.cmp(&a.transmits).then(a.id.cmp(&b.id)));
            let over = self.items.len() - max;
            self.items.drain(..over);
            self.pruned += over as u64;
        }
    }

    fn take(&mut self, overhead: usize, limit: usize, transmit_limit: usize) -> Vec<Vec<u8>> {
        if self.items.is_empty() {
            return Vec::new();
        }
        self.items
            .sort_by(|a, b| a.transmits.cmp(&b.transmits).then(b.id.cmp(&a.id)));
        let mut used = 0;
        let mut out = Vec::new();
        for q in &mut self.items {
            if used + overhead >= limit {
                break;
            }
            if q.msg.len() + overhead + used > limit {
                continue;
            }
            used += overhead + q.msg.len();
            out.push(q.msg.clone());
            q.transmits += 1;
        }
        self.items.retain(|q| q.transmits < transmit_limit.max(1));
        out
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

fn retransmit_limit(mult: usize, n: usize) -> usize {
    let scale = ((n + 1) as f64).log10().ceil() as usize;
    mult * scale
}

/// memberlist's `suspicionTimeout`: `mult × max(1, log10(n)) × interval`.
fn suspicion_timeout(mult: u32, n: usize, interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    Duration::from_secs_f64(f64::from(mult) * scale * interval.as_secs_f64())
}

/// The membership of one node.
pub(crate) struct Members {
    cfg: Config,
    nodes: HashMap<String, Node>,
    /// Probe order: shuffled when a round is over.
    order: Vec<String>,
    probe_index: usize,
    probe: Option<Probe>,
    next_probe: Instant,
    next_gossip: Instant,
    relays: HashMap<u32, Relay>,
    suspicions: HashMap<String, Suspicion>,
    seq: u32,
    incarnation: u32,
    awareness: i32,
    left: bool,
    system: Queue,
    user: Queue,
    rng: SmallRng,
    out: Vec<Out>,
}

impl Members {
    pub(crate) fn new(cfg: Config, now: Instant, seed: u64) -> Members {
        let mut rng = SmallRng::seed_from_u64(seed);
        let stagger = |rng: &mut SmallRng, d: Duration| d.mul_f64(rng.random_range(0.0..1.0));
        let next_probe = now + stagger(&mut rng, cfg.probe_interval);
        let next_gossip = now + stagger(&mut rng, cfg.gossip_interval);
        let me = Member {
            name: cfg.name.clone(),
            addr: cfg.addr,
            meta: cfg.meta.clone(),
            // memberlist's first incarnation is 1: an alive at 0 about a
            // node it never heard of is ignored.
            incarnation: 1,
            state: NodeState::Alive,
            vsn: VSN.to_vec(),
        };
        let mut nodes = HashMap::new();
        nodes.insert(
            me.name.clone(),
            Node {
                m: me,
                state_change: now,
            },
        );
        Members {
            order: vec![cfg.name.clone()],
            cfg,
            nodes,
            probe_index: 0,
            probe: None,
            next_probe,
            next_gossip,
            relays: HashMap::new(),
            suspicions: HashMap::new(),
            seq: 0,
            incarnation: 1,
            awareness: 0,
            left: false,
            system: Queue::default(),
            user: Queue::default(),
            rng,
            out: Vec::new(),
        }
    }

    /// What to do, in order.
    pub(crate) fn take_out(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.out)
    }

    /// Members that are alive or suspect, this node included: what
    /// memberlist's `Members()` returns, and so what Alertmanager's peer
    /// position and cluster size count.
    pub(crate) fn members(&self) -> Vec<Member> {
        let mut v: Vec<Member> = self
            .nodes
            .values()
            .filter(|n| !n.m.dead_or_left())
            .map(|n| n.m.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Members this node suspects right now.
    #[cfg(test)]
    pub(crate) fn suspects(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.m.state == NodeState::Suspect)
            .count()
    }

    /// Lifeguard's awareness: 0 when healthy, up to 7 when this node
    /// itself seems slow (`GetHealthScore`, Alertmanager's
    /// `alertmanager_cluster_health_score`).
    pub(crate) fn health_score(&self) -> i32 {
        self.awareness
    }

    /// Queues a user broadcast (a `clusterpb.Part`), gossiped with the
    /// pending membership messages.
    pub(crate) fn broadcast_user(&mut self, topic: Topic, version: i128, msg: Vec<u8>) {
        let mut data = Vec::with_capacity(msg.len() + 1);
        data.push(MessageType::User as u8);
        data.extend(msg);
        self.user.push(topic, version, data, self.cfg.max_queued);
    }

    fn overhead(&self) -> usize {
        let label = if self.cfg.label.is_empty() {
            0
        } else {
            2 + self.cfg.label.len()
        };
        label + CRC_OVERHEAD
    }

    /// Queues memberlist's own message about `node`, replacing older ones.
    fn queue_node(&mut self, node: String, incarnation: u32, msg: Vec<u8>) {
        self.system.push(
            Topic::Node(node),
            i128::from(incarnation),
            msg,
            self.cfg.max_queued,
        );
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn local_alive(&self) -> Alive {
        Alive {
            incarnation: self.incarnation,
            node: self.cfg.name.clone(),
            addr: ip_bytes(self.cfg.addr.ip()),
            port: self.cfg.addr.port(),
            meta: self.cfg.meta.clone(),
            vsn: VSN.to_vec(),
        }
    }

    /// Our node and every node we know, as a push/pull sends them (dead
    /// and left ones included, so the other side learns of them too).
    pub(crate) fn push_states(&self) -> Vec<PushNodeState> {
        self.nodes
            .values()
            .map(|n| PushNodeState {
                name: n.m.name.clone(),
                addr: ip_bytes(n.m.addr.ip()),
                port: n.m.addr.port(),
                meta: n.m.meta.clone(),
                incarnation: n.m.incarnation,
                state: n.m.state,
                vsn: n.m.vsn.clone(),
            })
            .collect()
    }

    /// Takes in the member list a push/pull brought (`mergeState`): dead
    /// reports become suspicions, since a push/pull may be old news.
    pub(crate) fn merge_remote(&mut self, remote: &[PushNodeState], now: Instant) {
        for r in remote {
            match r.state {
                NodeState::Alive => {
                    let Some(ip) = ip_of(&r.addr) else { continue };
                    let a = Alive {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        addr: ip_bytes(ip),
                        port: r.port,
                        meta: r.meta.clone(),
                        vsn: r.vsn.clone(),
                    };
                    self.alive_node(&a, now);
                }
                NodeState::Left => self.dead_node(
                    &Accusation {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: r.name.clone(),
                    },
                    now,
                ),
                NodeState::Dead | NodeState::Suspect => {
                    let from = self.cfg.name.clone();
                    self.suspect_node(
                        &Accusation {
                            incarnation: r.incarnation,
                            node: r.name.clone(),
                            from,
                        },
                        now,
                    )
                }
                NodeState::Other(_) => {}
            }
        }
    }

    /// One received packet. A malformed one is an error and changes nothing
    /// that came after the bad part.
    pub(crate) fn handle_packet(
        &mut self,
        from: SocketAddr,
        buf: &[u8],
        now: Instant,
    ) -> Result<(), Error> {
        for part in packet::decode_packet(buf, &self.cfg.label)? {
            self.handle_part(from, &part, now)?;
        }
        Ok(())
    }

    fn handle_part(
        &mut self,
        from: SocketAddr,
        part: &packet::Part,
        now: Instant,
    ) -> Result<(), Error> {
        match part.kind {
            MessageType::Ping => {
                let p: Ping = part.decode()?;
                if !p.node.is_empty() && p.node != self.cfg.name {
                    return Ok(());
                }
                let to = reply_addr(&p.source_addr, p.source_port, from);
                let ack = message::encode(&Ack {
                    seq_no: p.seq_no,
                    payload: Some(Vec::new()),
                });
                self.send_msg(to, ack);
            }
            MessageType::IndirectPing => {
                let ind: IndirectPing = part.decode()?;
                let Some(ip) = ip_of(&ind.target) else {
                    return Ok(());
                };
                let seq = self.next_seq();
                let reply_to = reply_addr(&ind.source_addr, ind.source_port, from);
                self.relays.insert(
                    seq,
                    Relay {
                        reply_to,
                        their_seq: ind.seq_no,
                        nack_at: ind.nack.then_some(now + self.cfg.probe_timeout),
                        expires: now + self.cfg.probe_timeout,
                    },
                );
                let ping = message::encode(&self.ping(seq, &ind.node));
                self.send_msg(SocketAddr::new(ip, ind.port), ping);
            }
            MessageType::Ack => {
                let ack: Ack = part.decode()?;
                self.acked(ack.seq_no);
            }
            MessageType::Nack => {
                let nack: Nack = part.decode()?;
                if let Some(p) = self.probe.as_mut().filter(|p| p.seq == nack.seq_no) {
                    p.nacks += 1;
                }
            }
            MessageType::Suspect => {
                let s: Suspect = part.decode()?;
                self.suspect_node(&s.0, now);
            }
            MessageType::Dead => {
                let d: Dead = part.decode()?;
                self.dead_node(&d.0, now);
            }
            MessageType::Alive => {
                let a: Alive = part.decode()?;
                self.alive_node(&a, now);
            }
            MessageType::User => self.out.push(Out::User(part.body.clone())),
            // Push/pull and errors come over streams; anything else is a
            // message of a newer memberlist this node does not speak.
            _ => {}
        }
        Ok(())
    }

    fn ping(&self, seq: u32, node: &str) -> Ping {
        Ping {
            seq_no: seq,
            node: node.to_string(),
            source_addr: ip_bytes(self.cfg.addr.ip()),
            source_port: self.cfg.addr.port(),
            source_node: self.cfg.name.clone(),
        }
    }

    fn acked(&mut self, seq: u32) {
        if self.probe.as_ref().is_some_and(|p| p.seq == seq) {
            self.probe = None;
            self.apply_awareness(-1);
            return;
        }
        if let Some(r) = self.relays.remove(&seq) {
            let ack = message::encode(&Ack {
                seq_no: r.their_seq,
                payload: None,
            });
            self.send_msg(r.reply_to, ack);
        }
    }

    /// The TCP fallback ping `seq` came back (`ok`) or not.
    pub(crate) fn tcp_ping_done(&mut self, seq: u32, ok: bool) {
        if ok {
            self.acked(seq);
        }
    }

    fn apply_awareness(&mut self, delta: i32) {
        self.awareness = (self.awareness + delta).clamp(0, self.cfg.awareness_max - 1);
    }

    fn scaled(&self, d: Duration) -> Duration {
        d * (self.awareness as u32 + 1)
    }

    /// memberlist's `aliveNode`, for messages about others and about us.
    fn alive_node(&mut self, a: &Alive, now: Instant) {
        if self.left && a.node == self.cfg.name {
            return;
        }
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            return;
        }
        let Some(ip) = ip_of(&a.addr) else { return };
        let addr = SocketAddr::new(ip, a.port);
        let is_local = a.node == self.cfg.name;
        let mut updates_node = false;
        if !self.nodes.contains_key(&a.node) {
            self.nodes.insert(
                a.node.clone(),
                Node {
                    m: Member {
                        name: a.node.clone(),
                        addr,
                        meta: a.meta.clone(),
                        incarnation: 0,
                        state: NodeState::Dead,
                        vsn: a.vsn.clone(),
                    },
                    state_change: now,
                },
            );
            // A new node goes to a random place in the probe order.
            let at = self.rng.random_range(0..=self.order.len());
            self.order.insert(at, a.node.clone());
        } else if let Some(n) = self.nodes.get(&a.node) {
            if n.m.addr != addr {
                if n.m.state == NodeState::Left {
                    updates_node = true;
                } else {
                    tracing::warn!(node = %a.node, mine = %n.m.addr, theirs = %addr, "conflicting address for a cluster member; ignored");
                    return;
                }
            }
        }
        let Some(n) = self.nodes.get(&a.node) else {
            return;
        };
        if a.incarnation <= n.m.incarnation && !is_local && !updates_node {
            return;
        }
        if a.incarnation < n.m.incarnation && is_local {
            return;
        }
        self.suspicions.remove(&a.node);
        let old_state = n.m.state;
        let old_meta = n.m.meta.clone();
        if is_local {
            if a.incarnation == n.m.incarnation && a.meta == n.m.meta && a.vsn == n.m.vsn {
                return;
            }
            self.refute(a.incarnation);
            return;
        }
        let msg = message::encode(a);
        self.queue_node(a.node.clone(), a.incarnation, msg);
        let Some(n) = self.nodes.get_mut(&a.node) else {
            return;
        };
        n.m.incarnation = a.incarnation;
        n.m.meta = a.meta.clone();
        n.m.addr = addr;
        if !a.vsn.is_empty() {
            n.m.vsn = a.vsn.clone();
        }
        if n.m.state != NodeState::Alive {
            n.m.state = NodeState::Alive;
            n.state_change = now;
        }
        let m = n.m.clone();
        if matches!(old_state, NodeState::Dead | NodeState::Left) {
            self.out.push(Out::Join(m));
        } else if old_meta != m.meta {
            self.out.push(Out::Update(m));
        }
    }

    /// memberlist's `suspectNode`.
    fn suspect_node(&mut self, s: &Accusation, now: Instant) {
        let Some(n) = self.nodes.get(&s.node) else {
            return;
        };
        if s.incarnation < n.m.incarnation {
            return;
        }
        if let Some(sus) = self.suspicions.get_mut(&s.node) {
            if sus.confirm(&s.from) {
                let msg = message::encode(&Suspect(s.clone()));
                self.queue_node(s.node.clone(), s.incarnation, msg);
            }
            return;
        }
        let Some(n) = self.nodes.get(&s.node) else {
            return;
        };
        if n.m.state != NodeState::Alive {
            return;
        }
        if s.node == self.cfg.name {
            self.refute(s.incarnation);
            return;
        }
        let msg = message::encode(&Suspect(s.clone()));
        self.queue_node(s.node.clone(), s.incarnation, msg);
        let est = self.nodes.len();
        let Some(n) = self.nodes.get_mut(&s.node) else {
            return;
        };
        n.m.incarnation = s.incarnation;
        n.m.state = NodeState::Suspect;
        n.state_change = now;
        let mut k = self.cfg.suspicion_mult.saturating_sub(2);
        if (est as u32).saturating_sub(2) < k || est < 2 {
            k = 0;
        }
        let min = suspicion_timeout(self.cfg.suspicion_mult, est, self.cfg.probe_interval);
        let max = min * self.cfg.suspicion_max_timeout_mult;
        let mut confirmers = HashSet::new();
        confirmers.insert(s.from.clone());
        self.suspicions.insert(
            s.node.clone(),
            Suspicion {
                confirmers,
                k,
                n: 0,
                min,
                max,
                start: now,
            },
        );
    }

    /// memberlist's `deadNode`; `from == node` is a node leaving.
    fn dead_node(&mut self, d: &Accusation, now: Instant) {
        let Some(n) = self.nodes.get(&d.node) else {
            return;
        };
        if d.incarnation < n.m.incarnation {
            return;
        }
        self.suspicions.remove(&d.node);
        if n.m.dead_or_left() {
            return;
        }
        if d.node == self.cfg.name && !self.left {
            self.refute(d.incarnation);
            return;
        }
        let msg = message::encode(&Dead(d.clone()));
        self.queue_node(d.node.clone(), d.incarnation, msg);
        let Some(n) = self.nodes.get_mut(&d.node) else {
            return;
        };
        n.m.incarnation = d.incarnation;
        n.m.state = if d.node == d.from {
            NodeState::Left
        } else {
            NodeState::Dead
        };
        n.state_change = now;
        let m = n.m.clone();
        if m.name != self.cfg.name {
            self.out.push(Out::Leave(m));
        }
    }

    /// Answers an accusation against ourselves with an incarnation above
    /// it, and counts against our health (`refute`).
    fn refute(&mut self, accused: u32) {
        self.incarnation = self.incarnation.wrapping_add(1);
        if accused >= self.incarnation {
            self.incarnation = accused.wrapping_add(1);
        }
        let inc = self.incarnation;
        if let Some(me) = self.nodes.get_mut(&self.cfg.name) {
            me.m.incarnation = inc;
        }
        self.apply_awareness(1);
        let msg = message::encode(&self.local_alive());
        self.queue_node(self.cfg.name.clone(), inc, msg);
    }

    /// Leaves: tells every live member at once (and gossips it) that this
    /// node left, so none waits a suspicion timeout for it.
    pub(crate) fn leave(&mut self, now: Instant) {
        if self.left {
            return;
        }
        self.left = true;
        let d = Accusation {
            incarnation: self.incarnation,
            node: self.cfg.name.clone(),
            from: self.cfg.name.clone(),
        };
        self.dead_node(&d, now);
        let msg = message::encode(&Dead(d));
        let targets: Vec<SocketAddr> = self
            .nodes
            .values()
            .filter(|n| n.m.name != self.cfg.name && !n.m.dead_or_left())
            .map(|n| n.m.addr)
            .collect();
        for to in targets {
            self.send_raw(to, vec![msg.clone()]);
        }
    }

    /// Sends one message with as many pending broadcasts as fit beside it
    /// (`sendMsg`).
    fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>) {
        let avail = self
            .cfg
            .udp_buffer
            .saturating_sub(msg.len() + COMPOUND_HEADER + self.overhead());
        let mut msgs = vec![msg];
        msgs.extend(self.broadcasts(avail));
        self.send_raw(to, msgs);
    }

    fn send_raw(&mut self, to: SocketAddr, msgs: Vec<Vec<u8>>) {
        match packet::encode_packet(&msgs, &self.cfg.label, true) {
            Ok(data) => self.out.push(Out::Packet { to, data }),
            Err(e) => tracing::debug!(err = %e, %to, "memberlist packet not encoded"),
        }
    }

    /// memberlist's own broadcasts first, then the delegate's.
    fn broadcasts(&mut self, limit: usize) -> Vec<Vec<u8>> {
        let n = self.nodes.len();
        let mut out = self.system.take(
            COMPOUND_PART,
            limit,
            retransmit_limit(self.cfg.retransmit_mult, n),
        );
        let used: usize = out.iter().map(|m| m.len() + COMPOUND_PART).sum();
        let members = self.nodes.values().filter(|n| !n.m.dead_or_left()).count();
        out.extend(self.user.take(
            COMPOUND_PART,
            limit.saturating_sub(used),
            retransmit_limit(self.cfg.user_retransmit_mult, members),
        ));
        out
    }

    fn random_nodes(&mut self, k: usize, keep: impl Fn(&Member) -> bool) -> Vec<Member> {
        let mut all: Vec<Member> = self
            .nodes
            .values()
            .filter(|n| keep(&n.m))
            .map(|n| n.m.clone())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.shuffle(&mut self.rng);
        all.truncate(k);
        all
    }

    /// When `tick` next has something to do.
    pub(crate) fn next_deadline(&self) -> Instant {
        let mut at = self.next_probe.min(self.next_gossip);
        if let Some(p) = &self.probe {
            at = at.min(if p.indirect_sent {
                p.deadline
            } else {
                p.indirect_at
            });
        }
        for s in self.suspicions.values() {
            at = at.min(s.deadline());
        }
        for r in self.relays.values() {
            at = at.min(r.nack_at.unwrap_or(r.expires));
        }
        at
    }

    /// Runs what is due: probes and their timeouts, suspicion timeouts,
    /// relayed pings' nacks, and gossip.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.tick_relays(now);
        self.tick_suspicions(now);
        self.tick_probe(now);
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.gossip_interval;
            if !self.left {
                self.gossip(now);
            }
        }
    }

    fn tick_relays(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .relays
            .iter()
            .filter(|(_, r)| r.nack_at.unwrap_or(r.expires) <= now)
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            if let Some(r) = self.relays.remove(&seq) {
                if r.nack_at.is_some() {
                    let nack = message::encode(&Nack {
                        seq_no: r.their_seq,
                    });
                    self.send_msg(r.reply_to, nack);
                }
            }
        }
    }

    fn tick_suspicions(&mut self, now: Instant) {
        let due: Vec<String> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline() <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(s) = self.suspicions.remove(&name) else {
                continue;
            };
            let Some(n) = self.nodes.get(&name) else {
                continue;
            };
            if n.m.state == NodeState::Suspect && n.state_change == s.start {
                let d = Accusation {
                    incarnation: n.m.incarnation,
                    node: name.clone(),
                    from: self.cfg.name.clone(),
                };
                tracing::info!(peer = %name, confirmations = s.n, "cluster member declared dead after its suspicion timeout");
                self.dead_node(&d, now);
            }
        }
    }

    fn tick_probe(&mut self, now: Instant) {
        if let Some(p) = &self.probe {
            if !p.indirect_sent && now >= p.indirect_at {
                self.probe_indirect();
            } else if p.indirect_sent && now >= p.deadline {
                self.probe_failed(now);
            }
        }
        if self.probe.is_none() && now >= self.next_probe && !self.left {
            self.next_probe = now + self.cfg.probe_interval;
            self.start_probe(now);
        }
    }

    fn start_probe(&mut self, now: Instant) {
        let Some(target) = self.next_target(now) else {
            return;
        };
        let Some(node) = self.nodes.get(&target).map(|n| n.m.clone()) else {
            return;
        };
        let seq = self.next_seq();
        let ping = message::encode(&self.ping(seq, &node.name));
        let interval = self.scaled(self.cfg.probe_interval);
        self.probe = Some(Probe {
            seq,
            target: node.name.clone(),
            sent: now,
            indirect_at: now + self.cfg.probe_timeout,
            deadline: now + interval,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
        });
        if node.state == NodeState::Alive {
            self.send_msg(node.addr, ping);
        } else {
            // A suspect is told so beside the ping, to refute it sooner.
            let s = message::encode(&Suspect(Accusation {
                incarnation: node.incarnation,
                node: node.name.clone(),
                from: self.cfg.name.clone(),
            }));
            self.send_raw(node.addr, vec![ping, s]);
        }
    }

    /// The next live member in probe order; at the end of a round the dead
    /// that have been gossiped to long enough are forgotten and the order
    /// reshuffled (`resetNodes`).
    fn next_target(&mut self, now: Instant) -> Option<String> {
        let mut checked = 0;
        loop {
            if checked >= self.order.len() {
                return None;
            }
            if self.probe_index >= self.order.len() {
                self.reset_nodes(now);
                self.probe_index = 0;
                checked += 1;
                continue;
            }
            let name = self.order[self.probe_index].clone();
            self.probe_index += 1;
            let skip =
                name == self.cfg.name || self.nodes.get(&name).is_none_or(|n| n.m.dead_or_left());
            if skip {
                checked += 1;
                continue;
            }
            return Some(name);
        }
    }

    fn reset_nodes(&mut self, now: Instant) {
        let keep = self.cfg.gossip_to_the_dead;
        let me = self.cfg.name.clone();
        self.nodes.retain(|name, n| {
            *name == me || !n.m.dead_or_left() || now.duration_since(n.state_change) <= keep
        });
        let nodes = &self.nodes;
        self.order.retain(|n| nodes.contains_key(n));
        self.order.shuffle(&mut self.rng);
    }

    fn probe_indirect(&mut self) {
        let Some(p) = self.probe.as_ref() else { return };
        let (seq, target_name) = (p.seq, p.target.clone());
        let Some(target) = self.nodes.get(&target_name).map(|n| n.m.clone()) else {
            self.probe = None;
            return;
        };
        let me = self.cfg.name.clone();
        let helpers = self.random_nodes(self.cfg.indirect_checks, |m| {
            m.name != me && m.name != target_name && m.state == NodeState::Alive
        });
        let mut expected = 0;
        for h in &helpers {
            let nack = h.pmax() >= 4;
            if nack {
                expected += 1;
            }
            let ind = message::encode(&IndirectPing {
                seq_no: seq,
                target: ip_bytes(target.addr.ip()),
                port: target.addr.port(),
                node: target.name.clone(),
                nack,
                source_addr: ip_bytes(self.cfg.addr.ip()),
                source_port: self.cfg.addr.port(),
                source_node: me.clone(),
            });
            self.send_msg(h.addr, ind);
        }
        let deadline = match self.probe.as_mut() {
            Some(p) => {
                p.indirect_sent = true;
                p.expected_nacks = expected;
                p.deadline
            }
            None => return,
        };
        if target.pmax() >= 3 {
            let ping = message::encode(&self.ping(seq, &target.name));
            self.out.push(Out::TcpPing {
                to: target.addr,
                seq,
                ping,
                deadline,
            });
        }
    }

    fn probe_failed(&mut self, now: Instant) {
        let Some(p) = self.probe.take() else { return };
        let delta = if p.expected_nacks > 0 {
            (p.expected_nacks.saturating_sub(p.nacks)) as i32
        } else {
            1
        };
        self.apply_awareness(delta);
        let Some(n) = self.nodes.get(&p.target) else {
            return;
        };
        tracing::debug!(peer = %p.target, after = ?now.duration_since(p.sent), "cluster probe failed; suspecting the member");
        let s = Accusation {
            incarnation: n.m.incarnation,
            node: p.target.clone(),
            from: self.cfg.name.clone(),
        };
        self.suspect_node(&s, now);
    }

    fn gossip(&mut self, now: Instant) {
        let me = self.cfg.name.clone();
        let dead_time = self.cfg.gossip_to_the_dead;
        let changes: HashMap<String, Instant> = self
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.state_change))
            .collect();
        let targets = self.random_nodes(self.cfg.gossip_nodes, |m| {
            m.name != me
                && match m.state {
                    NodeState::Alive | NodeState::Suspect => true,
                    NodeState::Dead => changes
                        .get(&m.name)
                        .is_some_and(|c| now.duration_since(*c) <= dead_time),
                    _ => false,
                }
        });
        let avail = self
            .cfg
            .udp_buffer
            .saturating_sub(COMPOUND_HEADER + self.overhead());
        for t in targets {
            let msgs = self.broadcasts(avail);
            if msgs.is_empty() {
                return;
            }
            self.send_raw(t.addr, msgs);
        }
    }
}

/// Where to answer: the source the message names, else where it came from.
fn reply_addr(addr: &[u8], port: u16, from: SocketAddr) -> SocketAddr {
    match ip_of(addr) {
        Some(ip) if port > 0 => SocketAddr::new(ip, port),
        _ => from,
    }
}

#[cfg(test)]
mod tests;
