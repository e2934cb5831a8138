//! Alertmanager's delegate state: what rides in memberlist's user-state
//! slot of a push/pull, and in user messages.
//!
//! Alertmanager's delegate (cluster/delegate.go) answers `LocalState` with
//! a `clusterpb.FullState`: one `Part` per state registered with
//! `Peer.AddState`, keyed by its name, in Go map order (so any order).
//! cmd/alertmanager registers the notification log as `"nfl"` and the
//! silences as `"sil"`; each part's data is that state's `MarshalBinary`,
//! length-delimited records (`MeshEntry` and `MeshSilence`), as in the
//! snapshot files. A broadcast (user message) is a single `Part`. An
//! unknown key is skipped with a warning on Alertmanager's side, so a
//! Herald-only part would be harmless, but none is sent.

use prost::Message;

use super::Error;
use crate::cluster::wire::{self, PbMeshEntry, PbMeshSilence};

/// The key of the silences' part.
pub(crate) const SILENCES: &str = "sil";
/// The key of the notification log's part.
pub(crate) const NFLOG: &str = "nfl";

/// `clusterpb.Part`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Part {
    #[prost(string, tag = "1")]
    pub(crate) key: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) data: Vec<u8>,
}

/// `clusterpb.FullState`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FullState {
    #[prost(message, repeated, tag = "1")]
    pub(crate) parts: Vec<Part>,
}

impl FullState {
    pub(crate) fn decode_from(buf: &[u8]) -> Result<Self, Error> {
        <Self as Message>::decode(buf).map_err(|e| Error::Protobuf(e.to_string()))
    }

    /// Builds the state from the two states' records.
    pub(crate) fn from_records(silences: &[PbMeshSilence], nflog: &[PbMeshEntry]) -> Self {
        FullState {
            parts: vec![
                Part {
                    key: NFLOG.into(),
                    data: wire::encode_delimited(nflog.iter().cloned()),
                },
                Part {
                    key: SILENCES.into(),
                    data: wire::encode_delimited(silences.iter().cloned()),
                },
            ],
        }
    }

    fn part(&self, key: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.key == key)
    }

    /// The silences' records; none when the part is missing.
    pub(crate) fn silences(&self) -> Result<Vec<PbMeshSilence>, Error> {
        self.part(SILENCES)
            .map_or(Ok(Vec::new()), |p| wire::decode_delimited(&p.data))
            .map_err(Error::Protobuf)
    }

    /// The notification log's records; none when the part is missing.
    pub(crate) fn nflog(&self) -> Result<Vec<PbMeshEntry>, Error> {
        self.part(NFLOG)
            .map_or(Ok(Vec::new()), |p| wire::decode_delimited(&p.data))
            .map_err(Error::Protobuf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::{PbMatcher, PbSilence};

    /// The protobuf bytes of `FullState{Parts: [{Key: "sil", Data: "ab"}]}`
    /// by proto3's rules: field 1 length-delimited (0x0a), the part's
    /// length, then in the part field 1 (0x0a) "sil" and field 2 (0x12)
    /// the data.
    #[test]
    fn full_state_has_clusterpbs_layout() {
        let fs = FullState {
            parts: vec![Part {
                key: "sil".into(),
                data: b"ab".to_vec(),
            }],
        };
        let bytes = fs.encode_to_vec();
        assert_eq!(
            bytes,
            [0x0a, 0x09, 0x0a, 0x03, b's', b'i', b'l', 0x12, 0x02, b'a', b'b']
        );
        assert_eq!(FullState::decode_from(&bytes).unwrap(), fs);
        assert!(FullState::decode_from(&bytes[..4]).is_err());
    }

    #[test]
    fn silences_round_trip_through_the_sil_part() {
        let s = PbMeshSilence {
            silence: Some(PbSilence {
                id: "x".into(),
                matchers: vec![PbMatcher {
                    kind: 0,
                    name: "a".into(),
                    pattern: "b".into(),
                }],
                ..Default::default()
            }),
            expires_at: None,
        };
        let fs = FullState::from_records(std::slice::from_ref(&s), &[]);
        let back = FullState::decode_from(&fs.encode_to_vec()).unwrap();
        assert_eq!(back.silences().unwrap(), [s]);
        assert!(back.nflog().unwrap().is_empty());
        assert!(FullState::default().silences().unwrap().is_empty());
    }
}
