//! A minimal memberlist member: it answers what Alertmanager's memberlist
//! sends a node it knows, so the node stays alive in its member list.
//!
//! Once a push/pull made Herald a member, Alertmanager probes it every
//! probe interval (1 s): a UDP `ping`, then after the probe timeout a TCP
//! `ping` on a stream. A node that answers neither is suspected and, after
//! the suspicion timeout (4 s in a two-node cluster), declared dead. This
//! answers both, refutes a suspicion of itself with a higher incarnation
//! (as memberlist's `refute` does), and answers push/pulls with its own
//! state. It does not probe others, gossip, or keep a member list: that is
//! the membership layer's work, still to come (issue 19).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::message::{self, Accusation, Ack, Alive, MessageType, Ping, Suspect, VSN};
use super::packet;
use super::stream::{self, ip_bytes, ip_of, LocalNode, RemoteState, Served};
use super::Error;

/// Memberlist's TCP timeout in Alertmanager (`--cluster.tcp-timeout`).
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the responder saw, for whoever runs it.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) udp_pings: u64,
    pub(crate) tcp_pings: u64,
    pub(crate) push_pulls: Vec<RemoteState>,
    pub(crate) refuted: u64,
}

/// A running responder; dropping it does not stop it, `stop` does.
pub(crate) struct Responder {
    cancel: CancellationToken,
    pub(crate) seen: Arc<Mutex<Seen>>,
    incarnation: Arc<AtomicU32>,
}

impl Responder {
    /// Binds UDP and TCP on `bind` (the same port, as memberlist does) and
    /// answers as `local`, with `user_state` as the delegate's state.
    pub(crate) async fn start(
        bind: SocketAddr,
        label: String,
        local: LocalNode,
        user_state: Vec<u8>,
    ) -> Result<Self, Error> {
        let udp = Arc::new(UdpSocket::bind(bind).await?);
        let tcp = TcpListener::bind(bind).await?;
        let cancel = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let incarnation = Arc::new(AtomicU32::new(local.incarnation));
        let ctx = Arc::new(Ctx {
            label,
            local,
            user_state,
            seen: seen.clone(),
            incarnation: incarnation.clone(),
        });
        tokio::spawn(udp_loop(udp, ctx.clone(), cancel.clone()));
        tokio::spawn(tcp_loop(tcp, ctx, cancel.clone()));
        Ok(Responder {
            cancel,
            seen,
            incarnation,
        })
    }

    pub(crate) fn incarnation(&self) -> u32 {
        self.incarnation.load(Ordering::Relaxed)
    }

    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }
}

struct Ctx {
    label: String,
    local: LocalNode,
    user_state: Vec<u8>,
    seen: Arc<Mutex<Seen>>,
    incarnation: Arc<AtomicU32>,
}

impl Ctx {
    fn record(&self, f: impl FnOnce(&mut Seen)) {
        // A poisoned lock only means a panicked reader; the counts stay
        // usable.
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    fn local_state(&self) -> LocalNode {
        LocalNode {
            incarnation: self.incarnation.load(Ordering::Relaxed),
            ..self.local.clone()
        }
    }

    /// The replies to one received packet.
    fn answer(&self, buf: &[u8], from: SocketAddr) -> Result<Vec<(SocketAddr, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        for part in packet::decode_packet(buf, &self.label)? {
            match part.kind {
                MessageType::Ping => {
                    let p: Ping = part.decode()?;
                    if !p.node.is_empty() && p.node != self.local.name {
                        continue;
                    }
                    self.record(|s| s.udp_pings += 1);
                    // Answer where the ping says, else where it came from,
                    // as `handlePing` does.
                    let to = match ip_of(&p.source_addr) {
                        Some(ip) if p.source_port > 0 => SocketAddr::new(ip, p.source_port),
                        _ => from,
                    };
                    let ack = message::encode(&Ack {
                        seq_no: p.seq_no,
                        payload: None,
                    });
                    out.push((to, ack));
                }
                MessageType::Suspect | MessageType::Dead => {
                    let a: Accusation = if part.kind == MessageType::Suspect {
                        part.decode::<Suspect>()?.0
                    } else {
                        part.decode::<message::Dead>()?.0
                    };
                    let current = self.incarnation.load(Ordering::Relaxed);
                    if a.node != self.local.name || a.incarnation < current {
                        continue;
                    }
                    // Refute: an incarnation above the accused one.
                    let inc = a.incarnation.saturating_add(1);
                    self.incarnation.fetch_max(inc, Ordering::Relaxed);
                    self.record(|s| s.refuted += 1);
                    out.push((from, message::encode(&self.alive())));
                }
                // Alive, user, ack and nack messages need a member list or a
                // delegate; this responder has neither.
                _ => {}
            }
        }
        Ok(out)
    }

    fn alive(&self) -> Alive {
        let l = self.local_state();
        Alive {
            incarnation: l.incarnation,
            node: l.name,
            addr: ip_bytes(l.addr),
            port: l.port,
            meta: l.meta,
            vsn: VSN.to_vec(),
        }
    }
}

async fn udp_loop(udp: Arc<UdpSocket>, ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = udp.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "memberlist responder: UDP receive");
                    continue;
                }
            },
        };
        match ctx.answer(&buf[..n], from) {
            Ok(replies) => {
                for (to, msg) in replies {
                    // Alertmanager's memberlist speaks protocol 5: CRC it.
                    let pkt = match packet::encode_packet(&[msg], &ctx.label, true) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::debug!(error = %e, "memberlist responder: encode");
                            continue;
                        }
                    };
                    if let Err(e) = udp.send_to(&pkt, to).await {
                        tracing::debug!(error = %e, %to, "memberlist responder: UDP send");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, %from, "memberlist responder: packet dropped"),
        }
    }
}

async fn tcp_loop(tcp: TcpListener, ctx: Arc<Ctx>, cancel: CancellationToken) {
    loop {
        let (mut conn, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tcp.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "memberlist responder: accept");
                    continue;
                }
            },
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let nodes = [ctx.local_state().push_state()];
            let served = tokio::time::timeout(
                STREAM_TIMEOUT,
                stream::serve(
                    &mut conn,
                    &ctx.label,
                    &ctx.local.name,
                    &nodes,
                    &ctx.user_state,
                ),
            )
            .await;
            match served {
                Ok(Ok(Served::Ping(_))) => ctx.record(|s| s.tcp_pings += 1),
                Ok(Ok(Served::PushPull(r))) => ctx.record(|s| s.push_pulls.push(r)),
                Ok(Err(e)) => tracing::debug!(error = %e, %from, "memberlist responder: stream"),
                Err(_) => tracing::debug!(%from, "memberlist responder: stream timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            label: String::new(),
            local: LocalNode {
                name: "herald".into(),
                addr: "127.0.0.1".parse().unwrap(),
                port: 7000,
                incarnation: 1,
                meta: vec![],
            },
            user_state: vec![],
            seen: Default::default(),
            incarnation: Arc::new(AtomicU32::new(1)),
        }
    }

    #[test]
    fn pings_are_acked_at_their_source_address() {
        let c = ctx();
        let ping = message::encode(&Ping {
            seq_no: 9,
            node: "herald".into(),
            source_addr: vec![127, 0, 0, 2],
            source_port: 9094,
            source_node: "am".into(),
        });
        let from: SocketAddr = "127.0.0.3:1".parse().unwrap();
        let pkt = packet::add_crc(&ping);
        let out = c.answer(&pkt, from).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "127.0.0.2:9094".parse::<SocketAddr>().unwrap());
        let (ack, _) = message::decode_body::<Ack>(&out[0].1[1..]).unwrap();
        assert_eq!(ack.seq_no, 9);
        // A ping for another name is ignored.
        let other = message::encode(&Ping {
            seq_no: 1,
            node: "someone".into(),
            ..Default::default()
        });
        assert!(c.answer(&other, from).unwrap().is_empty());
    }

    #[test]
    fn a_suspicion_is_refuted_with_a_higher_incarnation() {
        let c = ctx();
        let sus = message::encode(&Suspect(Accusation {
            incarnation: 1,
            node: "herald".into(),
            from: "am".into(),
        }));
        let out = c.answer(&sus, "127.0.0.1:1".parse().unwrap()).unwrap();
        let (alive, _) = message::decode_body::<Alive>(&out[0].1[1..]).unwrap();
        assert_eq!((alive.node.as_str(), alive.incarnation), ("herald", 2));
        // An old accusation is not answered again.
        assert!(c
            .answer(&sus, "127.0.0.1:1".parse().unwrap())
            .unwrap()
            .is_empty());
    }
}
