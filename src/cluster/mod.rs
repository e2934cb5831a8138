//! High availability (`cluster`): the state Herald replicas share.
//!
//! Alertmanager replicas gossip two states, silences and the notification
//! log, and merge what they receive with last-writer-wins rules. This
//! module holds the peer (`peer`: broadcasts, push/pull, reconnects, settle
//! and position, claims), Alertmanager's own cluster protocol it runs on
//! (`memberlist`: HashiCorp memberlist's membership and wire format, so
//! Herald and Alertmanager nodes form one cluster), how peers reach each
//! other (`transport`: UDP and TCP, or Alertmanager's TLS transport), the
//! messages (`gossip`, Alertmanager's `clusterpb` parts built on `wire`)
//! and the handle the pipeline waits on. The merge rules live beside the
//! states themselves (`Silences::merge`, `NotificationLog::merge`). docs/clustering.md has
//! the design.

pub mod gossip;
pub(crate) mod memberlist;
pub mod peer;
pub mod transport;
pub mod wire;

pub use peer::{ClusterSettings, Peer, PeerInfo, Replicated};
pub use transport::ClusterTls;

use std::sync::{Arc, OnceLock};

/// The cluster as the rest of Herald sees it. The pipeline is built before
/// the peer starts (the peer needs the states the app creates), so stages
/// hold this handle and find the peer once it is set; until then a node
/// counts as not settled.
#[derive(Default)]
pub struct ClusterHandle {
    peer: OnceLock<Arc<Peer>>,
    /// True once `peer` is set, for those waiting on it.
    started: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("peer", &self.peer().map(|p| p.name().to_string()))
            .finish()
    }
}

impl ClusterHandle {
    pub fn set(&self, peer: Arc<Peer>) {
        let _ = self.peer.set(peer);
        self.started.send_replace(true);
    }

    pub fn peer(&self) -> Option<&Arc<Peer>> {
        self.peer.get()
    }

    /// Waits until the peer is set; `None` when `cancel` fires first.
    pub async fn wait_peer(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<&Arc<Peer>> {
        let mut started = self.started.subscribe();
        tokio::select! {
            _ = started.wait_for(|s| *s) => {}
            _ = cancel.cancelled() => {}
        }
        self.peer()
    }

    /// How long this node holds a notification back before its dedup
    /// check: `position × --cluster.peer-timeout`.
    pub fn peer_wait(&self) -> std::time::Duration {
        self.peer().map(|p| p.peer_wait()).unwrap_or_default()
    }

    /// An Alertmanager replica is a member: see `Peer::alertmanager_member`.
    pub fn alertmanager_member(&self) -> bool {
        self.peer().is_some_and(|p| p.alertmanager_member())
    }
}
