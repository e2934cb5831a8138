//! A simulated network of members on a paused clock: packets are
//! delivered at once unless a link is cut, TCP pings succeed when the
//! target is reachable.

use super::*;

struct Net {
    nodes: Vec<Members>,
    /// Cut links, both directions: (from index, to index).
    cut: HashSet<(usize, usize)>,
    /// Stopped nodes neither send nor receive.
    stopped: HashSet<usize>,
    now: Instant,
    users: Vec<Vec<Vec<u8>>>,
    events: Vec<Vec<Out>>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

fn cfg(i: usize) -> Config {
    let mut c = Config::lan(format!("node-{i}"), addr(i));
    c.label = "lbl".into();
    c
}

impl Net {
    fn new(n: usize) -> Net {
        let now = Instant::now();
        let nodes = (0..n)
            .map(|i| Members::new(cfg(i), now, i as u64 + 1))
            .collect();
        Net {
            nodes,
            cut: HashSet::new(),
            stopped: HashSet::new(),
            now,
            users: vec![Vec::new(); n],
            events: (0..n).map(|_| Vec::new()).collect(),
        }
    }

    fn index(a: SocketAddr) -> usize {
        usize::from(a.port() - 7000)
    }

    fn reachable(&self, from: usize, to: usize) -> bool {
        to < self.nodes.len()
            && !self.stopped.contains(&from)
            && !self.stopped.contains(&to)
            && !self.cut.contains(&(from, to))
            && !self.cut.contains(&(to, from))
    }

    /// Everyone pushes/pulls with node 0, as `--cluster.peer` would.
    fn join_all(&mut self) {
        for i in 1..self.nodes.len() {
            let theirs = self.nodes[0].push_states();
            let mine = self.nodes[i].push_states();
            let now = self.now;
            self.nodes[i].merge_remote(&theirs, now);
            self.nodes[0].merge_remote(&mine, now);
        }
        self.pump();
    }

    /// Delivers every queued output until none is left.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                for o in self.nodes[i].take_out() {
                    any = true;
                    match o {
                        Out::Packet { to, data } => {
                            let j = Net::index(to);
                            if self.reachable(i, j) {
                                let now = self.now;
                                self.nodes[j]
                                    .handle_packet(addr(i), &data, now)
                                    .expect("packet decodes");
                            }
                        }
                        Out::TcpPing { to, seq, .. } => {
                            let ok = self.reachable(i, Net::index(to));
                            self.nodes[i].tcp_ping_done(seq, ok);
                        }
                        // As Alertmanager's states do: what changed the
                        // state is passed on.
                        Out::User(u) => {
                            if !self.users[i].contains(&u) {
                                self.nodes[i].broadcast_user(Topic::None, 0, u.clone());
                                self.users[i].push(u);
                            }
                        }
                        e => self.events[i].push(e),
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Runs the clock for `d`, ticking every node at each of its deadlines.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.stopped.contains(i))
                .map(|(_, n)| n.next_deadline())
                .min()
                .unwrap_or(end)
                .clamp(self.now + Duration::from_millis(1), end);
            self.now = next;
            for i in 0..self.nodes.len() {
                if !self.stopped.contains(&i) {
                    let now = self.now;
                    self.nodes[i].tick(now);
                }
            }
            self.pump();
        }
    }

    fn view(&self, i: usize) -> Vec<(String, NodeState)> {
        let mut v: Vec<(String, NodeState)> = self.nodes[i]
            .nodes
            .values()
            .map(|n| (n.m.name.clone(), n.m.state))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn state_of(&self, i: usize, name: &str) -> Option<NodeState> {
        self.nodes[i].nodes.get(name).map(|n| n.m.state)
    }
}

#[test]
fn members_learn_of_each_other_through_one_seed_and_stay_alive() {
    let mut net = Net::new(4);
    net.join_all();
    net.run(Duration::from_secs(5));
    for i in 0..4 {
        let names: Vec<String> = net.nodes[i].members().into_iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            ["node-0", "node-1", "node-2", "node-3"],
            "view of {i}"
        );
        assert_eq!(net.nodes[i].suspects(), 0);
        assert_eq!(net.nodes[i].health_score(), 0);
    }
    // Node 1 learnt of node 2 and 3 by gossip (alive messages), a join each.
    let joins = net.events[1]
        .iter()
        .filter(|e| matches!(e, Out::Join(_)))
        .count();
    assert_eq!(joins, 3);
}

#[test]
fn a_stopped_member_is_suspected_then_declared_dead_by_all() {
    let mut net = Net::new(3);
    net.join_all();
    net.run(Duration::from_secs(3));
    net.stopped.insert(2);
    // A probe round (≤ 2 s with 2 others) plus the suspicion timeout of a
    // 3-node cluster: 4 probe intervals.
    net.run(Duration::from_secs(3));
    assert!(
        (0..2).any(|i| net.state_of(i, "node-2") == Some(NodeState::Suspect)),
        "suspected first: {:?}",
        net.view(0)
    );
    net.run(Duration::from_secs(6));
    for i in 0..2 {
        assert_eq!(
            net.state_of(i, "node-2"),
            Some(NodeState::Dead),
            "{:?}",
            net.view(i)
        );
        assert_eq!(net.nodes[i].members().len(), 2);
        assert!(net.events[i]
            .iter()
            .any(|e| matches!(e, Out::Leave(m) if m.name == "node-2")));
    }
}

#[test]
fn a_member_whose_direct_link_is_cut_stays_alive_through_indirect_pings() {
    let mut net = Net::new(3);
    net.join_all();
    net.run(Duration::from_secs(2));
    // UDP between 0 and 1 is cut, but 2 relays; the TCP ping is cut too.
    net.cut.insert((0, 1));
    net.run(Duration::from_secs(20));
    for i in 0..3 {
        assert_eq!(net.nodes[i].members().len(), 3, "{:?}", net.view(i));
    }
}

#[test]
fn a_suspicion_of_ourselves_is_refuted_with_a_higher_incarnation() {
    let mut net = Net::new(2);
    net.join_all();
    net.run(Duration::from_secs(1));
    let before = net.nodes[1].incarnation;
    let sus = message::encode(&Suspect(Accusation {
        incarnation: before,
        node: "node-1".into(),
        from: "node-0".into(),
    }));
    let pkt = packet::encode_packet(&[sus], "lbl", true).unwrap();
    let now = net.now;
    net.nodes[1].handle_packet(addr(0), &pkt, now).unwrap();
    assert_eq!(net.nodes[1].incarnation, before + 1);
    assert_eq!(
        net.nodes[1].health_score(),
        1,
        "a refutation counts against us"
    );
    net.run(Duration::from_secs(1));
    let inc = net.nodes[0].nodes.get("node-1").map(|n| n.m.incarnation);
    assert_eq!(inc, Some(before + 1), "the alive reached node 0");
    assert_eq!(net.state_of(0, "node-1"), Some(NodeState::Alive));
}

#[test]
fn a_leaving_member_is_marked_left_at_once() {
    let mut net = Net::new(3);
    net.join_all();
    net.run(Duration::from_secs(2));
    let now = net.now;
    net.nodes[2].leave(now);
    net.pump();
    net.stopped.insert(2);
    for i in 0..2 {
        assert_eq!(net.state_of(i, "node-2"), Some(NodeState::Left));
    }
    // Forgotten after the gossip-to-the-dead time, at a probe round's end.
    net.run(Duration::from_secs(35));
    assert_eq!(net.state_of(0, "node-2"), None, "{:?}", net.view(0));
}

#[test]
fn user_broadcasts_reach_every_member_and_newer_versions_replace_older() {
    let mut net = Net::new(5);
    net.join_all();
    net.run(Duration::from_secs(3));
    let topic = Topic::State {
        kind: 1,
        id: "s1".into(),
    };
    net.nodes[0].broadcast_user(topic.clone(), 1, b"v1".to_vec());
    net.nodes[0].broadcast_user(topic.clone(), 2, b"v2".to_vec());
    net.nodes[0].broadcast_user(topic.clone(), 1, b"stale".to_vec());
    // Node 0 sends it 3 × ⌈log10 6⌉ = 3 times; those who take it in pass
    // it on.
    net.run(Duration::from_secs(2));
    for i in 1..5 {
        assert!(
            net.users[i].iter().any(|u| u == b"v2"),
            "node {i} got {:?}",
            net.users[i]
        );
        assert!(!net.users[i].iter().any(|u| u == b"v1" || u == b"stale"));
    }
    assert_eq!(
        net.nodes[0].user.len(),
        0,
        "sent its transmit limit and dropped"
    );
}

#[test]
fn the_queue_sends_the_least_sent_first_and_prunes_the_most_sent() {
    let mut q = Queue::default();
    for i in 0..3u8 {
        q.push(Topic::None, 0, vec![i; 10], 3);
    }
    // Room for two: the newest first.
    let got = q.take(2, 24, 3);
    assert_eq!(got, vec![vec![2; 10], vec![1; 10]]);
    let got = q.take(2, 24, 3);
    assert_eq!(got[0], vec![0; 10], "the least sent goes next");
    q.push(Topic::None, 0, vec![9; 10], 3);
    assert_eq!(q.len(), 3);
    assert_eq!(q.pruned, 1);
    assert!(q.items.iter().any(|i| i.msg == vec![9; 10]));
    assert_eq!(retransmit_limit(4, 3), 4);
    assert_eq!(retransmit_limit(4, 10), 8);
    assert_eq!(
        suspicion_timeout(4, 3, Duration::from_secs(1)),
        Duration::from_secs(4)
    );
}

#[test]
fn garbage_and_foreign_labels_are_errors_not_panics() {
    let mut m = Members::new(cfg(0), Instant::now(), 1);
    let now = Instant::now();
    assert!(m.handle_packet(addr(1), b"", now).is_err());
    assert!(m
        .handle_packet(addr(1), &[0xf4, 3, b'x', b'y', b'z', 0], now)
        .is_err());
    let ping = message::encode(&Ping {
        seq_no: 1,
        node: "node-0".into(),
        ..Default::default()
    });
    let pkt = packet::encode_packet(&[ping], "other", true).unwrap();
    assert!(m.handle_packet(addr(1), &pkt, now).is_err());
    let pkt = packet::encode_packet(&[vec![0, 0x81]], "lbl", true).unwrap();
    assert!(m.handle_packet(addr(1), &pkt, now).is_err());
    assert!(m.take_out().is_empty());
}
