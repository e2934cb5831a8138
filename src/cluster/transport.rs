//! How peers reach each other. By default SWIM packets travel as UDP
//! datagrams and push/pull exchanges as plain TCP, as with Alertmanager's
//! default transport. With `--cluster.tls-config` everything goes over TLS
//! on the TCP port instead, as Alertmanager's TLS transport does: packets
//! over one kept-open connection per peer, each exchange on a connection of
//! its own. No UDP socket is opened then, so a node without a certificate
//! the peers accept can neither join, nor read, nor inject state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// The first byte on a TLS connection says what it carries.
const PACKET_CONNECTION: u8 = b'P';
const STREAM_CONNECTION: u8 = b'S';

/// Largest SWIM packet accepted over TLS (a UDP datagram's limit).
pub const MAX_PACKET_BYTES: usize = 65_536;

/// Packets queued for one peer while its connection is being made; more
/// are dropped, as a full socket buffer drops datagrams.
const QUEUED_PACKETS: usize = 1024;

/// A packet connection unused this long is closed.
const IDLE_PACKET_CONNECTION: Duration = Duration::from_secs(300);

/// A byte stream to or from a peer: plain TCP or TLS.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

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

    async fn connect(
        &self,
        addr: SocketAddr,
        kind: u8,
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
            tls.write_all(&[kind]).await.map_err(|e| e.to_string())?;
            Ok::<Box<dyn Conn>, String>(Box::new(tls))
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
    }
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
                    let mut conn = links.tls.connect(to, PACKET_CONNECTION, timeout).await?;
                    conn.write_all(&frame(&packet)?)
                        .await
                        .map_err(|e| e.to_string())?;
                    conn.shutdown().await.map_err(|e| e.to_string())
                };
                if !matches!(tokio::time::timeout(timeout, run).await, Ok(Ok(()))) {
                    links
                        .stats
                        .packet_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Opens a connection for a push/pull exchange.
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
                let r = links.tls.connect(addr, STREAM_CONNECTION, timeout).await;
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

/// One packet connection per peer, made on the first packet and kept open.
pub struct TlsLinks {
    tls: ClusterTls,
    stats: Arc<TlsStats>,
    timeout: Duration,
    queues: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    shutdown: CancellationToken,
    tasks: crate::tasks::Tasks,
}

impl TlsLinks {
    pub fn new(
        tls: ClusterTls,
        stats: Arc<TlsStats>,
        timeout: Duration,
        shutdown: CancellationToken,
        tasks: crate::tasks::Tasks,
    ) -> TlsLinks {
        TlsLinks {
            tls,
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
/// idles or the node stops; what is queued then is dropped.
async fn write_packets(
    tls: ClusterTls,
    to: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stats: Arc<TlsStats>,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut conn = tokio::select! {
        c = tls.connect(to, PACKET_CONNECTION, timeout) => match c {
            Ok(c) => c,
            Err(e) => {
                stats.packet_write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %to, err = %e, "cluster packet connection failed");
                return;
            }
        },
        _ = shutdown.cancelled() => return,
    };
    loop {
        let packet = tokio::select! {
            p = tokio::time::timeout(IDLE_PACKET_CONNECTION, rx.recv()) => match p {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(framed) = frame(&packet) else {
            continue;
        };
        match tokio::time::timeout(timeout, conn.write_all(&framed)).await {
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

/// A packet as a packet connection carries it: its length, then itself.
fn frame(packet: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(packet.len()).map_err(|_| "packet too large".to_string())?;
    let mut framed = Vec::with_capacity(4 + packet.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(packet);
    Ok(framed)
}

/// What an accepted connection turned out to be.
pub enum Incoming {
    /// A push/pull exchange, to be answered on this stream.
    Stream(Box<dyn Conn>),
    /// A peer's packet connection: each packet is handed to `deliver`
    /// until it closes.
    Packets,
}

/// Completes the handshake of an accepted TLS connection and reads what it
/// carries. Packets are passed to `deliver` as they arrive; a failed
/// handshake (no or a wrong certificate) or a malformed frame is a read
/// error.
pub async fn accept_tls(
    tls: &ClusterTls,
    tcp: TcpStream,
    stats: &TlsStats,
    timeout: Duration,
    shutdown: &CancellationToken,
    mut deliver: impl FnMut(Vec<u8>),
) -> Option<Incoming> {
    let handshake = async {
        let mut s = tls.acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut kind = [0u8; 1];
        s.read_exact(&mut kind).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((s, kind[0]))
    };
    let (mut conn, kind) = match tokio::time::timeout(timeout, handshake).await {
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
    match kind {
        STREAM_CONNECTION => {
            stats.streams_received.fetch_add(1, Ordering::Relaxed);
            Some(Incoming::Stream(Box::new(conn)))
        }
        PACKET_CONNECTION => {
            let mut buf = Vec::new();
            loop {
                let read = async {
                    let mut len = [0u8; 4];
                    conn.read_exact(&mut len).await?;
                    let len = u32::from_be_bytes(len) as usize;
                    if len > MAX_PACKET_BYTES {
                        return Err(std::io::Error::other(format!(
                            "packet of {len} bytes refused"
                        )));
                    }
                    buf.resize(len, 0);
                    conn.read_exact(&mut buf).await?;
                    Ok(())
                };
                let r = tokio::select! {
                    r = read => r,
                    _ = shutdown.cancelled() => return Some(Incoming::Packets),
                };
                match r {
                    Ok(()) => {
                        stats
                            .packet_bytes_received
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                        deliver(std::mem::take(&mut buf));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Some(Incoming::Packets)
                    }
                    Err(e) => {
                        stats.read_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(err = %e, "cluster packet connection failed");
                        return Some(Incoming::Packets);
                    }
                }
            }
        }
        other => {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(kind = other, "cluster TLS connection of unknown kind");
            None
        }
    }
}
