//! How peers reach each other. By default SWIM packets travel as UDP
//! datagrams and push/pull exchanges as plain TCP, as with Alertmanager's
//! default transport. With `--cluster.tls-config` everything goes over TLS
//! on the TCP port instead, in the wire format of Alertmanager's TLS
//! transport (`cluster/tls_transport.go`), so a Herald node and an
//! Alertmanager node can reach each other over it: packets over one
//! kept-open connection per peer, each exchange on a connection of its
//! own. No UDP socket is opened then, so a node without a certificate the
//! peers accept can neither join, nor read, nor inject state.
//!
//! Every connection carries frames: a little-endian `u32` length, then a
//! `clusterpb.MemberlistMessage` of that length. A packet connection is a
//! run of `PACKET` frames, each with the sender's address; a stream
//! connection starts with one `STREAM` frame (no address, no payload) and
//! is a raw byte stream after it, read and written by memberlist (or
//! Herald's exchange) itself, label header included.
//!
//! Alertmanager reads each frame through a fresh 4 KiB `bufio.Reader` on
//! the `tls.Conn` and drops whatever that buffer holds beyond the frame; a
//! `tls.Conn` read never returns more than one TLS record. So every frame
//! Herald writes must end a TLS record: one `write_all` per frame, never
//! coalesced with what follows (rustls starts a new record on each write).
//! A `STREAM` frame sharing a record with the stream's first bytes would
//! lose them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// `tls_connection.go`'s `version`: a frame of another version is refused
/// (the receiver drops the connection).
const VERSION: &str = "v0.1.0";

/// Largest SWIM packet accepted over TLS (a UDP datagram's limit).
pub const MAX_PACKET_BYTES: usize = 65_536;

/// Largest frame read: a packet plus its version and sender address.
/// Alertmanager allocates whatever length a peer announces; Herald refuses
/// more than a packet can need before allocating.
const MAX_FRAME_BYTES: usize = MAX_PACKET_BYTES + 1024;

/// Packets queued for one peer while its connection is being made; more
/// are dropped, as a full socket buffer drops datagrams.
const QUEUED_PACKETS: usize = 1024;

/// A packet connection unused this long is closed.
const IDLE_PACKET_CONNECTION: Duration = Duration::from_secs(300);

/// A byte stream to or from a peer: plain TCP or TLS.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Alertmanager's `clusterpb.MemberlistMessage`.
#[derive(Clone, PartialEq, Message)]
struct MemberlistMessage {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(enumeration = "Kind", tag = "2")]
    kind: i32,
    /// The sender's address, `host:port`: where memberlist sends its
    /// answers to a packet (an ack to a ping without a source address).
    #[prost(string, tag = "3")]
    from_addr: String,
    #[prost(bytes = "vec", tag = "4")]
    msg: Vec<u8>,
}

/// `MemberlistMessage.Kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
enum Kind {
    Stream = 0,
    Packet = 1,
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The rest of the connection is a stream.
    Stream,
    /// A memberlist packet and the address its sender gave.
    Packet { from: SocketAddr, msg: Vec<u8> },
}

/// Why a frame was refused; the connection is dropped, as Alertmanager
/// drops it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame ends early")]
    Truncated,
    #[error("frame of {0} bytes refused")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("frame version {0:?} incompatible")]
    Version(String),
    #[error("frame of unknown kind {0}")]
    Kind(i32),
    #[error("packet sender address {0:?} is not an IP and port")]
    From(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A message with its length in front, as `writePacket` and `writeStream`
/// send it.
fn encode_frame(m: &MemberlistMessage) -> Result<Vec<u8>, FrameError> {
    let len = m.encoded_len();
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut out = Vec::with_capacity(4 + len);
    // In range: len <= MAX_FRAME_BYTES.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    m.encode(&mut out)
        .map_err(|e| FrameError::Io(std::io::Error::other(e.to_string())))?;
    Ok(out)
}

/// A `PACKET` frame carrying `packet` from `from` (Herald's advertised
/// address, where the receiver's answers go).
pub(crate) fn packet_frame(from: &str, packet: &[u8]) -> Result<Vec<u8>, FrameError> {
    if packet.len() > MAX_PACKET_BYTES {
        return Err(FrameError::TooLarge(packet.len()));
    }
    encode_frame(&MemberlistMessage {
        version: VERSION.into(),
        kind: Kind::Packet as i32,
        from_addr: from.into(),
        msg: packet.to_vec(),
    })
}

/// The `STREAM` frame that opens a stream connection: `writeStream` sends
/// neither an address nor a payload.
pub(crate) fn stream_frame() -> Vec<u8> {
    let m = MemberlistMessage {
        version: VERSION.into(),
        kind: Kind::Stream as i32,
        from_addr: String::new(),
        msg: Vec::new(),
    };
    let mut out = Vec::with_capacity(4 + m.encoded_len());
    out.extend_from_slice(&(m.encoded_len() as u32).to_le_bytes());
    out.extend(m.encode_to_vec());
    out
}

/// A frame's message (after its length), checked as `read` and `toPacket`
/// check it.
pub(crate) fn decode_message(buf: &[u8]) -> Result<Frame, FrameError> {
    let m = MemberlistMessage::decode(buf)?;
    if m.version != VERSION {
        return Err(FrameError::Version(m.version));
    }
    match Kind::try_from(m.kind) {
        Ok(Kind::Stream) => Ok(Frame::Stream),
        Ok(Kind::Packet) => {
            if m.msg.len() > MAX_PACKET_BYTES {
                return Err(FrameError::TooLarge(m.msg.len()));
            }
            // Alertmanager resolves the address (a name would be looked
            // up); its own senders give `IP:port`, and a lookup per packet
            // is no work for the accept path.
            let from = m
                .from_addr
                .parse()
                .map_err(|_| FrameError::From(m.from_addr.clone()))?;
            Ok(Frame::Packet { from, msg: m.msg })
        }
        Err(_) => Err(FrameError::Kind(m.kind)),
    }
}

/// Reads the next frame; `None` when the peer closed the connection
/// between frames. Reads exactly the frame, so what follows a `STREAM`
/// frame stays on the connection for the stream's reader.
pub(crate) async fn read_frame(
    conn: &mut (impl AsyncRead + Unpin),
) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match conn.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    conn.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    decode_message(&buf).map(Some)
}

/// `--cluster.tls-config`: the same file Alertmanager reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClusterTls {
    #[serde(default)]
    tls_server_config: Option<crate::web::RawTls>,
    #[serde(default)]
    tls_client_config: Option<crate::commoncfg::TlsConfig>,
}

/// Mutual TLS between peers, loaded from `--cluster.tls-config`.
#[derive(Clone)]
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

impl ClusterTls {
    /// Reads the file; relative paths in it are relative to its directory,
    /// as in Alertmanager.
    pub fn load(path: &Path) -> Result<ClusterTls, String> {
        let at = |e: String| format!("--cluster.tls-config {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
        let raw: RawClusterTls = serde_saphyr::from_str(&text).map_err(|e| at(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let server = raw
            .tls_server_config
            .ok_or_else(|| at("tls_server_config is required".into()))?;
        let client = raw
            .tls_client_config
            .ok_or_else(|| at("tls_client_config is required".into()))?;
        let server = crate::web::server_tls_config(server, dir).map_err(|e| at(e.to_string()))?;
        let client = crate::tls::client_config(&client, dir, "tls_client_config")
            .map_err(|e| at(e.to_string()))?;
        Ok(ClusterTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// Dials `addr` and sends `first` (a frame) as soon as the handshake
    /// is done, all within `timeout`, as `dialTLSConn` with the dial
    /// timeout and then the first write do.
    async fn connect(
        &self,
        addr: SocketAddr,
        first: &[u8],
        timeout: Duration,
    ) -> Result<Box<dyn Conn>, String> {
        let run = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            // Certificates are checked against the address dialled unless
            // `server_name` says otherwise.
            let name = ServerName::IpAddress(addr.ip().into());
            let mut tls = self
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            write_frame(&mut tls, first)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Box<dyn Conn>, String>(Box::new(tls))
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
    }
}

/// Writes one frame so that it ends a TLS record (see the module's doc).
async fn write_frame(conn: &mut (impl AsyncWrite + Unpin), frame: &[u8]) -> std::io::Result<()> {
    conn.write_all(frame).await?;
    conn.flush().await
}

/// `alertmanager_tls_transport_*`: what goes over TLS connections.
#[derive(Default)]
pub struct TlsStats {
    pub packet_bytes_sent: AtomicU64,
    pub packet_bytes_received: AtomicU64,
    pub streams_sent: AtomicU64,
    pub streams_received: AtomicU64,
    pub read_errors: AtomicU64,
    pub packet_write_errors: AtomicU64,
    pub stream_write_errors: AtomicU64,
}

/// The outgoing side of the transport.
pub enum Transport {
    Udp(Arc<UdpSocket>),
    Tls(TlsLinks),
}

impl Transport {
    /// Sends one SWIM packet; never waits on the peer (a packet that cannot
    /// go now is lost, as a datagram would be).
    pub async fn send(&self, to: SocketAddr, packet: Vec<u8>) {
        match self {
            Transport::Udp(udp) => {
                let _ = udp.send_to(&packet, to).await;
            }
            Transport::Tls(links) => links.send(to, packet),
        }
    }

    /// `send` from outside the gossip loop, without waiting: a datagram
    /// the socket cannot take now is dropped.
    pub fn send_now(&self, to: SocketAddr, packet: Vec<u8>) {
        match self {
            Transport::Udp(udp) => {
                let _ = udp.try_send_to(&packet, to);
            }
            Transport::Tls(links) => links.send(to, packet),
        }
    }

    /// Sends a packet while the node shuts down (its leave message): over
    /// TLS on a connection of its own, since the kept-open ones are closing.
    pub async fn send_last(&self, to: SocketAddr, packet: Vec<u8>) {
        match self {
            Transport::Udp(_) => self.send(to, packet).await,
            Transport::Tls(links) => {
                let timeout = links.timeout.min(Duration::from_secs(1));
                let run = async {
                    let framed = packet_frame(&links.from, &packet).map_err(|e| e.to_string())?;
                    let mut conn = links.tls.connect(to, &framed, timeout).await?;
                    conn.shutdown().await.map_err(|e| e.to_string())
                };
                match tokio::time::timeout(timeout, run).await {
                    Ok(Ok(())) => {
                        links
                            .stats
                            .packet_bytes_sent
                            .fetch_add(packet.len() as u64, Ordering::Relaxed);
                    }
                    _ => {
                        links
                            .stats
                            .packet_write_errors
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Opens a connection for a push/pull exchange. Over TLS it has sent
    /// its `STREAM` frame; what the caller writes next (the label header
    /// first, when there is one) is the stream, as after `DialTimeout`.
    pub async fn open_stream(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<dyn Conn>, String> {
        match self {
            Transport::Udp(_) => {
                let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| format!("connecting to {addr} timed out"))?
                    .map_err(|e| e.to_string())?;
                Ok(Box::new(tcp))
            }
            Transport::Tls(links) => {
                let r = links.tls.connect(addr, &stream_frame(), timeout).await;
                let counter = match r {
                    Ok(_) => &links.stats.streams_sent,
                    Err(_) => &links.stats.stream_write_errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                r
            }
        }
    }
}

/// One packet connection per peer, made on the first packet and kept open
/// (Alertmanager's connection pool keeps one per address likewise, and
/// dials again once a write on it failed).
pub struct TlsLinks {
    tls: ClusterTls,
    /// The node's advertised address as every packet frame carries it.
    from: Arc<str>,
    stats: Arc<TlsStats>,
    timeout: Duration,
    queues: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    shutdown: CancellationToken,
    tasks: crate::tasks::Tasks,
}

impl TlsLinks {
    /// `advertise` goes into every packet frame: a memberlist peer sends
    /// its answers there, so it must be the address peers reach this
    /// node's listener at (Alertmanager sends its bind address, wrong when
    /// it binds a wildcard).
    pub fn new(
        tls: ClusterTls,
        advertise: SocketAddr,
        stats: Arc<TlsStats>,
        timeout: Duration,
        shutdown: CancellationToken,
        tasks: crate::tasks::Tasks,
    ) -> TlsLinks {
        TlsLinks {
            tls,
            from: advertise.to_string().into(),
            stats,
            timeout,
            queues: Mutex::new(HashMap::new()),
            shutdown,
            tasks,
        }
    }

    fn send(&self, to: SocketAddr, packet: Vec<u8>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let packet = match queues.get(&to) {
            None => packet,
            Some(q) => match q.try_send(packet) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats
                        .packet_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // The connection ended: make a new one for this packet.
                Err(mpsc::error::TrySendError::Closed(p)) => p,
            },
        };
        let (tx, rx) = mpsc::channel(QUEUED_PACKETS);
        let _ = tx.try_send(packet);
        queues.insert(to, tx);
        self.tasks.spawn(
            "cluster packet writer",
            write_packets(
                self.tls.clone(),
                self.from.clone(),
                to,
                rx,
                self.stats.clone(),
                self.timeout,
                self.shutdown.clone(),
            ),
        );
    }
}

/// Writes the queued packets for `to` over one connection until it fails,
/// idles, the peer closes it or the node stops; what is queued then is
/// dropped. The first packet goes out with the handshake.
async fn write_packets(
    tls: ClusterTls,
    from: Arc<str>,
    to: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stats: Arc<TlsStats>,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let framed = |p: &[u8]| match packet_frame(&from, p) {
        Ok(f) => Some(f),
        Err(e) => {
            stats.packet_write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %to, err = %e, "cluster packet not sent");
            None
        }
    };
    let conn = loop {
        let first = tokio::select! {
            p = rx.recv() => match p {
                Some(p) => p,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let Some(frame) = framed(&first) else {
            continue;
        };
        tokio::select! {
            c = tls.connect(to, &frame, timeout) => match c {
                Ok(c) => {
                    stats
                        .packet_bytes_sent
                        .fetch_add(first.len() as u64, Ordering::Relaxed);
                    break c;
                }
                Err(e) => {
                    stats.packet_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %to, err = %e, "cluster packet connection failed");
                    return;
                }
            },
            _ = shutdown.cancelled() => return,
        }
    };
    // The peer never writes on a packet connection; a read that ends is it
    // closing, noticed now rather than by losing the next packet to a
    // reset connection.
    let (mut reader, mut writer) = tokio::io::split(conn);
    let mut sink = [0u8; 64];
    loop {
        let packet = tokio::select! {
            p = tokio::time::timeout(IDLE_PACKET_CONNECTION, rx.recv()) => match p {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => return,
            },
            r = reader.read(&mut sink) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            _ = shutdown.cancelled() => return,
        };
        let Some(frame) = framed(&packet) else {
            continue;
        };
        match tokio::time::timeout(timeout, write_frame(&mut writer, &frame)).await {
            Ok(Ok(())) => {
                stats
                    .packet_bytes_sent
                    .fetch_add(packet.len() as u64, Ordering::Relaxed);
            }
            _ => {
                stats.packet_write_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// What an accepted connection turned out to be.
pub enum Incoming {
    /// A push/pull exchange (or memberlist's TCP ping), to be answered on
    /// this stream.
    Stream(Box<dyn Conn>),
    /// A peer's packet connection, now closed: each packet went to
    /// `deliver`.
    Packets,
}

/// Completes the handshake of an accepted TLS connection and reads its
/// frames. Packets are passed to `deliver` with the address their sender
/// gave, as they arrive; a `STREAM` frame hands the rest of the
/// connection over (Alertmanager's `handle` does the same whatever came
/// before it). A failed handshake (no or a wrong certificate) or a
/// malformed frame is a read error; a peer closing between frames is not.
pub async fn accept_tls(
    tls: &ClusterTls,
    tcp: TcpStream,
    stats: &TlsStats,
    timeout: Duration,
    shutdown: &CancellationToken,
    mut deliver: impl FnMut(Vec<u8>, SocketAddr),
) -> Option<Incoming> {
    let handshake = async {
        let mut s = tls.acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        match read_frame(&mut s).await {
            Ok(Some(f)) => Ok((s, f)),
            Ok(None) => Err("closed before its first frame".to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    // The dialer sends its first frame right after the handshake: both
    // are bounded, what follows on a packet connection is not (it idles
    // between packets).
    let (mut conn, mut frame) = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(err = %e, "cluster TLS connection refused");
            return None;
        }
        Err(_) => {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    loop {
        match frame {
            Frame::Stream => {
                stats.streams_received.fetch_add(1, Ordering::Relaxed);
                return Some(Incoming::Stream(Box::new(conn)));
            }
            Frame::Packet { from, msg } => {
                stats
                    .packet_bytes_received
                    .fetch_add(msg.len() as u64, Ordering::Relaxed);
                deliver(msg, from);
            }
        }
        let r = tokio::select! {
            r = read_frame(&mut conn) => r,
            _ = shutdown.cancelled() => return Some(Incoming::Packets),
        };
        frame = match r {
            Ok(Some(f)) => f,
            Ok(None) => return Some(Incoming::Packets),
            Err(e) => {
                stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(err = %e, "cluster packet connection failed");
                return Some(Incoming::Packets);
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MemberlistMessage{Version: "v0.1.0", Kind: PACKET, FromAddr:
    /// "127.0.0.1:9094", Msg: {1, 2, 3}}` by hand from cluster.proto's field
    /// numbers: fields 1, 3 (strings) and 4 (bytes) length-delimited, 2 a
    /// varint; the length in front little-endian.
    #[test]
    fn a_packet_frame_has_alertmanagers_bytes() {
        let mut want = vec![31, 0, 0, 0];
        want.extend([0x0a, 6]);
        want.extend(b"v0.1.0");
        want.extend([0x10, 1]);
        want.extend([0x1a, 14]);
        want.extend(b"127.0.0.1:9094");
        want.extend([0x22, 3, 1, 2, 3]);
        assert_eq!(packet_frame("127.0.0.1:9094", &[1, 2, 3]).unwrap(), want);
        assert_eq!(
            decode_message(&want[4..]).unwrap(),
            Frame::Packet {
                from: "127.0.0.1:9094".parse().unwrap(),
                msg: vec![1, 2, 3]
            }
        );
    }

    /// STREAM is the enum's zero: proto3 leaves it out, and the frame is
    /// the version alone.
    #[test]
    fn a_stream_frame_is_the_version_alone() {
        let mut want = vec![8, 0, 0, 0, 0x0a, 6];
        want.extend(b"v0.1.0");
        assert_eq!(stream_frame(), want);
        assert_eq!(decode_message(&want[4..]).unwrap(), Frame::Stream);
    }

    /// Alertmanager's own cases (`TestWritePacket`), an IPv6 sender, then
    /// a stream whose bytes after the frame are left to the stream's reader.
    #[tokio::test]
    async fn frames_round_trip_and_a_stream_keeps_its_bytes() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let cases = [
            ("127.0.0.1:8001", &b""[..]),
            ("10.0.0.4:9094", b"hello"),
            ("127.0.0.1:8001", b"0"),
            ("[::1]:9094", b"six"),
        ];
        for (from, msg) in cases {
            a.write_all(&packet_frame(from, msg).unwrap())
                .await
                .unwrap();
        }
        a.write_all(&stream_frame()).await.unwrap();
        a.write_all(b"\x04rest").await.unwrap();
        drop(a);
        for (from, msg) in cases {
            let got = read_frame(&mut b).await.unwrap();
            assert_eq!(
                got,
                Some(Frame::Packet {
                    from: from.parse().unwrap(),
                    msg: msg.to_vec()
                })
            );
        }
        assert_eq!(read_frame(&mut b).await.unwrap(), Some(Frame::Stream));
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\x04rest");
    }

    #[tokio::test]
    async fn a_close_between_frames_is_the_end_and_within_one_an_error() {
        let whole = packet_frame("127.0.0.1:9094", b"ping").unwrap();
        for cut in 0..whole.len() {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            a.write_all(&whole[..cut]).await.unwrap();
            drop(a);
            let r = read_frame(&mut b).await;
            if cut == 0 {
                assert!(matches!(r, Ok(None)), "{r:?}");
            } else {
                assert!(matches!(r, Err(FrameError::Truncated)), "{cut}: {r:?}");
            }
        }
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::TooLarge(n)) if n == u32::MAX as usize
        ));
        let big = vec![0u8; MAX_PACKET_BYTES + 1];
        assert!(matches!(
            packet_frame("127.0.0.1:9094", &big),
            Err(FrameError::TooLarge(_))
        ));
        assert!(packet_frame("127.0.0.1:9094", &big[1..]).is_ok());
    }

    #[test]
    fn malformed_messages_are_errors() {
        let msg = |version: &str, kind: i32, from: &str| {
            MemberlistMessage {
                version: version.into(),
                kind,
                from_addr: from.into(),
                msg: b"x".to_vec(),
            }
            .encode_to_vec()
        };
        let cases = [
            msg("v0.2.0", 1, "127.0.0.1:1"),
            msg("", 0, ""),
            msg(VERSION, 7, "127.0.0.1:1"),
            msg(VERSION, 1, ""),
            msg(VERSION, 1, "localhost:9094"),
            msg(VERSION, 1, "127.0.0.1"),
            vec![0xff; 5],
            vec![0x0a, 0x7f, b'v'],
        ];
        for c in cases {
            assert!(decode_message(&c).is_err(), "{c:?}");
        }
        // Every cut of a good message decodes or fails, never panics.
        let good = msg(VERSION, 1, "127.0.0.1:9094");
        for cut in 0..good.len() {
            let _ = decode_message(&good[..cut]);
        }
    }
}
