//! Memberlist over a TCP stream: the push/pull state exchange, and the
//! TCP fallback ping a node sends when its UDP probes go unanswered.
//!
//! A stream carries one message. Only the side that dials writes the label
//! header (memberlist's transport adds it on dial; the answer on the same
//! connection has none), then the message: a type byte and its msgpack
//! body, the whole of it wrapped in `compress` when the sender compresses
//! (Alertmanager does: memberlist's default). A push/pull is the header
//! (`pushPullHeader`), that many `pushNodeState` values, then the
//! delegate's state as raw bytes of `UserStateLen`; the two sides each
//! send one, the dialer first.

use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::message::{
    self, Ack, Body, ErrResp, MessageType, NodeState, Ping, PushNodeState, PushPullHeader,
    UserMsgHeader, VSN,
};
use super::msgpack::{complete_len, Fields, Reader};
use super::packet::{self, LABEL_MAX, MAX_DECOMPRESSED};
use super::Error;

/// Memberlist refuses a delegate state above 20 MiB (`maxPushStateBytes`).
pub(crate) const MAX_USER_STATE: usize = 20 * 1024 * 1024;

/// A member as Herald announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalNode {
    pub(crate) name: String,
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
    pub(crate) incarnation: u32,
    /// Alertmanager's nodes carry none; kept for a later Herald use.
    pub(crate) meta: Vec<u8>,
}

/// An IP as memberlist carries it: 4 bytes for IPv4 (its transport calls
/// `To4`, and peers dial `net.IP(addr)`), 16 for IPv6.
pub(crate) fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.octets().to_vec(), |v4| v4.octets().to_vec()),
    }
}

/// The IP of a member's `Addr` bytes, `None` when malformed.
pub(crate) fn ip_of(addr: &[u8]) -> Option<IpAddr> {
    match addr.len() {
        4 => <[u8; 4]>::try_from(addr).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(addr)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_canonical()),
        _ => None,
    }
}

impl LocalNode {
    pub(crate) fn push_state(&self) -> PushNodeState {
        PushNodeState {
            name: self.name.clone(),
            addr: ip_bytes(self.addr),
            port: self.port,
            meta: self.meta.clone(),
            incarnation: self.incarnation,
            state: NodeState::Alive,
            vsn: VSN.to_vec(),
        }
    }
}

/// What the other side of a push/pull sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteState {
    pub(crate) join: bool,
    pub(crate) nodes: Vec<PushNodeState>,
    /// Alertmanager's `clusterpb.FullState` (see `delegate_state`).
    pub(crate) user_state: Vec<u8>,
}

/// A push/pull message, type byte first, as `sendLocalState` builds it.
pub(crate) fn encode_push_pull(
    nodes: &[PushNodeState],
    user_state: &[u8],
    join: bool,
) -> Result<Vec<u8>, Error> {
    if user_state.len() > MAX_USER_STATE {
        return Err(Error::TooLarge("user state"));
    }
    let mut out = message::encode(&PushPullHeader {
        nodes: nodes.len(),
        user_state_len: user_state.len(),
        join,
    });
    for n in nodes {
        out.extend(message::encode_body(n));
    }
    out.extend_from_slice(user_state);
    Ok(out)
}

/// Reads one message from a stream, growing a buffer only as far as the
/// next value needs. After a `compress` message the decompressed bytes
/// take the connection's place.
struct Incoming<'a, S> {
    conn: Option<&'a mut S>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read from the connection, against `MAX_DECOMPRESSED`.
    read: usize,
}

impl<'a, S: AsyncRead + Unpin> Incoming<'a, S> {
    fn new(conn: &'a mut S) -> Self {
        Incoming {
            conn: Some(conn),
            buf: Vec::new(),
            pos: 0,
            read: 0,
        }
    }

    /// Reads more from the connection; end of stream is `Truncated`.
    async fn more(&mut self) -> Result<(), Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::Truncated);
        };
        let mut chunk = [0u8; 16 * 1024];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Truncated);
        }
        self.read += n;
        if self.read > MAX_DECOMPRESSED {
            return Err(Error::TooLarge("stream"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn bytes(&mut self, n: usize) -> Result<&[u8], Error> {
        while self.buf.len() - self.pos < n {
            self.more().await?;
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    async fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1).await?[0])
    }

    /// The bytes of the next complete msgpack value.
    async fn value_bytes(&mut self) -> Result<&[u8], Error> {
        loop {
            if let Some(len) = complete_len(&self.buf[self.pos..])? {
                let s = &self.buf[self.pos..self.pos + len];
                self.pos += len;
                return Ok(s);
            }
            self.more().await?;
        }
    }

    async fn body<B: Body>(&mut self) -> Result<B, Error> {
        let v = Reader::new(self.value_bytes().await?).value()?;
        B::read(&Fields::new(v, B::NAME)?)
    }

    /// The label header, when one comes first ("" when none).
    async fn label(&mut self) -> Result<String, Error> {
        // A stream that ends before its first byte has no label (nor
        // message); let the message read report it.
        if self.buf.len() == self.pos && self.more().await.is_err() {
            return Ok(String::new());
        }
        if self.buf[self.pos] != MessageType::HasLabel as u8 {
            return Ok(String::new());
        }
        self.pos += 1;
        let len = usize::from(self.byte().await?);
        if len == 0 {
            return Err(Error::EmptyLabel);
        }
        debug_assert!(len <= LABEL_MAX);
        let label = self.bytes(len).await?.to_vec();
        String::from_utf8(label).map_err(|_| Error::LabelMismatch {
            want: String::new(),
            got: "(not UTF-8)".into(),
        })
    }

    /// The type of the message, after unwrapping compression.
    async fn message_type(&mut self) -> Result<MessageType, Error> {
        let t = MessageType::try_from(self.byte().await?)?;
        match t {
            MessageType::Encrypt => Err(Error::Encrypted),
            MessageType::Compress => {
                let (inner, _) = packet::decompress(self.value_bytes().await?)?;
                self.conn = None;
                self.buf = inner;
                self.pos = 0;
                let t = MessageType::try_from(self.byte().await?)?;
                if matches!(t, MessageType::Compress | MessageType::Encrypt) {
                    return Err(Error::Unexpected {
                        want: MessageType::PushPull,
                        got: t,
                    });
                }
                Ok(t)
            }
            t => Ok(t),
        }
    }

    /// The rest of a push/pull after its type byte (`readRemoteState`).
    async fn remote_state(&mut self) -> Result<RemoteState, Error> {
        let header: PushPullHeader = self.body().await?;
        if header.user_state_len > MAX_USER_STATE {
            return Err(Error::TooLarge("user state"));
        }
        // Each node state is at least a few bytes: a count beyond what the
        // size limit allows is a lie, not an allocation to make.
        if header.nodes > MAX_DECOMPRESSED / 8 {
            return Err(Error::TooLarge("node count"));
        }
        let mut nodes = Vec::with_capacity(header.nodes.min(1024));
        for _ in 0..header.nodes {
            nodes.push(self.body::<PushNodeState>().await?);
        }
        let user_state = self.bytes(header.user_state_len).await?.to_vec();
        Ok(RemoteState {
            join: header.join,
            nodes,
            user_state,
        })
    }
}

/// The dialing side of a push/pull (`sendAndReceiveState`): sends the label
/// header and Herald's state, then reads the remote's. A remote `errResp`
/// comes back as `Error::Remote`. The caller bounds it in time (memberlist
/// uses its TCP timeout, 10 s in Alertmanager).
pub(crate) async fn push_pull<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    label: &str,
    nodes: &[PushNodeState],
    user_state: &[u8],
    join: bool,
) -> Result<RemoteState, Error> {
    let mut out = packet::label_header(label)?;
    out.extend(encode_push_pull(nodes, user_state, join)?);
    conn.write_all(&out).await?;
    conn.flush().await?;
    let mut inc = Incoming::new(conn);
    match inc.message_type().await? {
        MessageType::PushPull => inc.remote_state().await,
        MessageType::Err => Err(Error::Remote(inc.body::<ErrResp>().await?.error)),
        got => Err(Error::Unexpected {
            want: MessageType::PushPull,
            got,
        }),
    }
}

/// What an accepted stream carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Served {
    /// A push/pull, answered with Herald's state.
    PushPull(RemoteState),
    /// A TCP ping for Herald, acked.
    Ping(Ping),
}

/// What a peer's stream asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// A push/pull: the caller answers it with `answer_push_pull`, its
    /// own state taken after the remote's arrived.
    PushPull(RemoteState),
    /// A TCP ping for this node, already acked.
    Ping(Ping),
    /// A user message sent reliably (Alertmanager's oversized broadcasts).
    User(Vec<u8>),
}

/// The accepting side (`handleConn`): checks the label, acks a ping (the
/// TCP fallback probe), reads a user message or the remote half of a
/// push/pull. Other messages are refused with an error.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    label: &str,
    local_name: &str,
) -> Result<Request, Error> {
    let mut inc = Incoming::new(&mut *conn);
    let got = inc.label().await?;
    if got != label {
        return Err(Error::LabelMismatch {
            want: label.to_string(),
            got,
        });
    }
    match inc.message_type().await? {
        MessageType::PushPull => Ok(Request::PushPull(inc.remote_state().await?)),
        MessageType::Ping => {
            let ping: Ping = inc.body().await?;
            if !ping.node.is_empty() && ping.node != local_name {
                return Err(Error::NotForUs(ping.node));
            }
            let ack = message::encode(&Ack {
                seq_no: ping.seq_no,
                payload: None,
            });
            conn.write_all(&ack).await?;
            conn.flush().await?;
            Ok(Request::Ping(ping))
        }
        MessageType::User => {
            let header: UserMsgHeader = inc.body().await?;
            if header.user_msg_len > MAX_USER_STATE {
                return Err(Error::TooLarge("user message"));
            }
            Ok(Request::User(
                inc.bytes(header.user_msg_len).await?.to_vec(),
            ))
        }
        got => Err(Error::Unexpected {
            want: MessageType::PushPull,
            got,
        }),
    }
}

/// Our half of a push/pull the remote began.
pub(crate) async fn answer_push_pull<S: AsyncWrite + Unpin>(
    conn: &mut S,
    nodes: &[PushNodeState],
    user_state: &[u8],
    join: bool,
) -> Result<(), Error> {
    let out = encode_push_pull(nodes, user_state, join)?;
    conn.write_all(&out).await?;
    conn.flush().await?;
    Ok(())
}

/// `serve` answers with a fixed state; see `accept` for the general case.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    label: &str,
    local_name: &str,
    nodes: &[PushNodeState],
    user_state: &[u8],
) -> Result<Served, Error> {
    match accept(conn, label, local_name).await? {
        Request::PushPull(remote) => {
            answer_push_pull(conn, nodes, user_state, remote.join).await?;
            Ok(Served::PushPull(remote))
        }
        Request::Ping(p) => Ok(Served::Ping(p)),
        Request::User(_) => Err(Error::Unexpected {
            want: MessageType::PushPull,
            got: MessageType::User,
        }),
    }
}

/// `sendUserMsg`: a user message over its own stream, for what does not
/// fit in a packet.
pub(crate) async fn send_user<S: AsyncWrite + Unpin>(
    conn: &mut S,
    label: &str,
    msg: &[u8],
) -> Result<(), Error> {
    let mut out = packet::label_header(label)?;
    out.extend(message::encode(&UserMsgHeader {
        user_msg_len: msg.len(),
    }));
    out.extend_from_slice(msg);
    conn.write_all(&out).await?;
    conn.flush().await?;
    Ok(())
}

/// memberlist's TCP fallback probe (`sendPingAndWaitForAck`): `ping` is
/// the whole encoded message; true when the ack of the same sequence
/// number came back.
pub(crate) async fn tcp_ping<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    label: &str,
    seq: u32,
    ping: &[u8],
) -> Result<bool, Error> {
    let mut out = packet::label_header(label)?;
    out.extend_from_slice(ping);
    conn.write_all(&out).await?;
    conn.flush().await?;
    let mut inc = Incoming::new(conn);
    match inc.message_type().await? {
        MessageType::Ack => Ok(inc.body::<Ack>().await?.seq_no == seq),
        got => Err(Error::Unexpected {
            want: MessageType::Ack,
            got,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> PushNodeState {
        LocalNode {
            name: name.into(),
            addr: "127.0.0.1".parse().unwrap(),
            port: 9094,
            incarnation: 1,
            meta: vec![],
        }
        .push_state()
    }

    /// Go's `pushPullHeader{Nodes: 1, UserStateLen: 300, Join: true}`
    /// through go-msgpack 0.5.5 (sorted keys Join, Nodes, UserStateLen;
    /// 300 a uint16), after the type byte 6.
    #[test]
    fn push_pull_header_bytes() {
        let msg = encode_push_pull(&[], &[0; 300], true).unwrap();
        let mut want = vec![6, 0x83, 0xa4];
        want.extend(b"Join");
        want.extend([0xc3, 0xa5]);
        want.extend(b"Nodes");
        want.extend([0x00, 0xac]);
        want.extend(b"UserStateLen");
        want.extend([0xcd, 0x01, 0x2c]);
        assert_eq!(msg[..want.len()], want);
        assert_eq!(msg.len(), want.len() + 300);
    }

    #[test]
    fn ips_travel_as_4_or_16_bytes() {
        assert_eq!(ip_bytes("10.1.2.3".parse().unwrap()), [10, 1, 2, 3]);
        assert_eq!(ip_bytes("::ffff:10.1.2.3".parse().unwrap()), [10, 1, 2, 3]);
        assert_eq!(ip_bytes("::1".parse().unwrap()).len(), 16);
        assert_eq!(ip_of(&[10, 1, 2, 3]), Some("10.1.2.3".parse().unwrap()));
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(ip_of(&mapped), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ip_of(&[1, 2]), None);
    }

    /// Both sides in one process: the dialer's label and state reach the
    /// server, the server's state (compressed, as Alertmanager sends it)
    /// comes back.
    #[tokio::test]
    async fn push_pull_between_dialer_and_server() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            // Answer as a compressing memberlist would: read with `serve`'s
            // reader, reply compressed.
            let mut inc = Incoming::new(&mut b);
            assert_eq!(inc.label().await.unwrap(), "lab");
            assert_eq!(inc.message_type().await.unwrap(), MessageType::PushPull);
            let remote = inc.remote_state().await.unwrap();
            let reply = encode_push_pull(&[node("am-1"), node("am-2")], b"state", false).unwrap();
            b.write_all(&packet::compress(&reply).unwrap())
                .await
                .unwrap();
            remote
        });
        let got = push_pull(&mut a, "lab", &[node("herald")], b"mine", true)
            .await
            .unwrap();
        assert_eq!(got.nodes.len(), 2);
        assert_eq!(got.nodes[1].name, "am-2");
        assert_eq!(got.user_state, b"state");
        let remote = server.await.unwrap();
        assert!(remote.join);
        assert_eq!(remote.nodes, [node("herald")]);
        assert_eq!(remote.user_state, b"mine");
    }

    #[tokio::test]
    async fn serve_checks_the_label_and_acks_pings() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let mut msg = packet::label_header("x").unwrap();
        msg.extend(message::encode(&Ping {
            seq_no: 42,
            node: "herald".into(),
            ..Default::default()
        }));
        a.write_all(&msg).await.unwrap();
        let served = serve(&mut b, "x", "herald", &[], &[]).await.unwrap();
        assert!(matches!(served, Served::Ping(Ping { seq_no: 42, .. })));
        let mut buf = vec![0u8; 64];
        let n = a.read(&mut buf).await.unwrap();
        let (ack, _) = message::decode_body::<Ack>(&buf[1..n]).unwrap();
        assert_eq!((buf[0], ack.seq_no), (MessageType::Ack as u8, 42));

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&encode_push_pull(&[], &[], true).unwrap())
            .await
            .unwrap();
        assert!(matches!(
            serve(&mut b, "x", "herald", &[], &[]).await,
            Err(Error::LabelMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn a_remote_error_and_a_cut_stream_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(&message::encode(&ErrResp {
            error: "refused".into(),
        }))
        .await
        .unwrap();
        let r = push_pull(&mut a, "", &[], &[], false).await;
        assert!(matches!(r, Err(Error::Remote(e)) if e == "refused"));

        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let full = encode_push_pull(&[node("n")], b"abc", false).unwrap();
        tokio::spawn(async move {
            // Take the request, answer short, close.
            let mut sink = vec![0u8; 1024];
            let _ = b.read(&mut sink).await;
            let _ = b.write_all(&full[..full.len() - 2]).await;
        });
        assert!(matches!(
            push_pull(&mut a, "", &[], &[], false).await,
            Err(Error::Truncated)
        ));
    }
}
