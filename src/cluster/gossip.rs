//! The messages peers exchange, as Alertmanager's delegate does: a
//! `clusterpb.Part` per broadcast, keyed `sil` (silences) or `nfl` (the
//! notification log) and holding length-delimited protobuf records, so a
//! Herald node and an Alertmanager node understand each other's. Herald's
//! claims travel the same way under a key of their own.

use jiff::Timestamp;
use prost::Message;
use serde::{Deserialize, Serialize};

use super::memberlist::delegate_state::{Part, NFLOG as NFLOG_KEY, SILENCES};
use super::wire;
use crate::nflog::Entry;
use crate::silence::Silence;

pub enum Gossip {
    Silence(Silence, Timestamp),
    Nflog(String, Entry),
    /// A node is delivering a notification (notification-log state key,
    /// hash of the alerts it carries) until `until` at the latest: peers
    /// that reach the same notification wait for it to be logged instead
    /// of sending a duplicate (Herald only; not part of the full state).
    Claim(Claim),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub key: String,
    pub hash: u64,
    pub node: String,
    pub until: Timestamp,
}

/// What a broadcast is about, and which version: a newer version of the
/// same silence or log entry replaces an older one still being spread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub kind: u8,
    pub id: String,
    pub version: i128,
}

const SILENCE: u8 = 1;
const NFLOG: u8 = 2;
const CLAIM: u8 = 3;

/// The `clusterpb.Part` key of Herald's claims. Alertmanager drops user
/// messages of keys it has no state for, and claims go only to Herald
/// members anyway.
pub const CLAIMS: &str = "herald.claim";

impl Gossip {
    pub fn key(&self) -> Key {
        match self {
            Gossip::Silence(s, _) => Key {
                kind: SILENCE,
                id: s.id.clone(),
                version: s.updated_at.as_nanosecond(),
            },
            Gossip::Nflog(k, e) => Key {
                kind: NFLOG,
                id: k.clone(),
                version: e.timestamp.as_nanosecond(),
            },
            Gossip::Claim(c) => Key {
                kind: CLAIM,
                id: format!("{}\0{}", c.key, c.node),
                version: c.until.as_nanosecond(),
            },
        }
    }
}

/// A message as Alertmanager's channels broadcast it: a `clusterpb.Part`
/// of the state's key and its length-delimited record (`MeshSilence`,
/// `MeshEntry`). `None` for a log entry whose key has no receiver part.
pub fn encode(g: &Gossip) -> Option<Vec<u8>> {
    let (key, data) = match g {
        Gossip::Silence(s, expires) => (
            SILENCES,
            wire::encode_delimited([wire::silence_to_pb(s, *expires)]),
        ),
        Gossip::Nflog(key, e) => (
            NFLOG_KEY,
            wire::encode_delimited([wire::entry_to_pb(key, e)?]),
        ),
        Gossip::Claim(c) => (CLAIMS, serde_json::to_vec(c).ok()?),
    };
    Some(
        Part {
            key: key.to_string(),
            data,
        }
        .encode_to_vec(),
    )
}

/// A received user message: the records of one part. Alertmanager's
/// states take several records in one part; a part of another key is
/// empty, as Alertmanager ignores it.
pub fn decode(buf: &[u8]) -> Result<Vec<Gossip>, String> {
    let part = Part::decode(buf).map_err(|e| e.to_string())?;
    records(&part)
}

/// The records of a part of a broadcast or a full state.
pub(crate) fn records(part: &Part) -> Result<Vec<Gossip>, String> {
    match part.key.as_str() {
        SILENCES => {
            let mut out = Vec::new();
            for m in wire::decode_delimited::<wire::PbMeshSilence>(&part.data)? {
                if let Some((s, exp)) = wire::silence_from_pb(m)? {
                    out.push(Gossip::Silence(s, exp));
                }
            }
            Ok(out)
        }
        NFLOG_KEY => Ok(wire::decode_delimited::<wire::PbMeshEntry>(&part.data)?
            .into_iter()
            .filter_map(wire::entry_from_pb)
            .map(|(k, e)| Gossip::Nflog(k, e))
            .collect()),
        CLAIMS => serde_json::from_slice(&part.data)
            .map(|c| vec![Gossip::Claim(c)])
            .map_err(|e| e.to_string()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_alertmanager_parts_and_garbage_is_refused() {
        let e = Entry {
            firing: vec![1, 2],
            resolved: vec![],
            timestamp: Timestamp::from_second(10).unwrap(),
            expires_at: Timestamp::from_second(20).unwrap(),
            receiver_data: Default::default(),
        };
        let key = r#"{}:{alertname="A"}:team/webhook/0"#;
        let msg = encode(&Gossip::Nflog(key.into(), e.clone())).unwrap();
        let part = Part::decode(msg.as_slice()).unwrap();
        assert_eq!(part.key, "nfl");
        match decode(&msg).unwrap().as_slice() {
            [Gossip::Nflog(k, got)] => {
                assert_eq!(k, key);
                assert_eq!(got, &e);
            }
            _ => panic!("wrong kind"),
        }
        assert!(encode(&Gossip::Nflog("no receiver".into(), e)).is_none());
        let other = Part {
            key: "someone-else".into(),
            data: vec![1, 2, 3],
        };
        assert!(decode(&other.encode_to_vec()).unwrap().is_empty());
        let bad = Part {
            key: "sil".into(),
            data: vec![0xff, 0xff],
        };
        assert!(decode(&bad.encode_to_vec()).is_err());
        assert!(decode(&[0xff]).is_err());
    }
}
