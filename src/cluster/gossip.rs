//! The messages peers exchange: one silence (Alertmanager's `MeshSilence`)
//! or one notification-log entry, each a tag byte and a body; a full state
//! is a sequence of length-prefixed messages.

use jiff::Timestamp;
use prost::Message;
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize)]
struct NflogWire {
    key: String,
    firing: Vec<u64>,
    resolved: Vec<u64>,
    timestamp: Timestamp,
    expires_at: Timestamp,
    /// Missing from an older Herald peer, which ignores ours.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    receiver_data: crate::nflog::ReceiverData,
}

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

pub fn encode(g: &Gossip) -> Vec<u8> {
    match g {
        Gossip::Silence(s, expires) => {
            let mut out = vec![SILENCE];
            out.extend(wire::silence_to_pb(s, *expires).encode_to_vec());
            out
        }
        Gossip::Nflog(key, e) => {
            let mut out = vec![NFLOG];
            let body = NflogWire {
                key: key.clone(),
                firing: e.firing.clone(),
                resolved: e.resolved.clone(),
                timestamp: e.timestamp,
                expires_at: e.expires_at,
                receiver_data: e.receiver_data.clone(),
            };
            out.extend(serde_json::to_vec(&body).unwrap_or_default());
            out
        }
        Gossip::Claim(c) => {
            let mut out = vec![CLAIM];
            out.extend(serde_json::to_vec(c).unwrap_or_default());
            out
        }
    }
}

pub fn decode(data: &[u8]) -> Result<Gossip, String> {
    match data.split_first() {
        Some((&SILENCE, body)) => {
            let m = wire::PbMeshSilence::decode(body).map_err(|e| e.to_string())?;
            match wire::silence_from_pb(m)? {
                Some((s, expires)) => Ok(Gossip::Silence(s, expires)),
                None => Err("silence message without a silence".into()),
            }
        }
        Some((&NFLOG, body)) => {
            let w: NflogWire = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            Ok(Gossip::Nflog(
                w.key,
                Entry {
                    firing: w.firing,
                    resolved: w.resolved,
                    timestamp: w.timestamp,
                    expires_at: w.expires_at,
                    receiver_data: w.receiver_data,
                },
            ))
        }
        Some((&CLAIM, body)) => serde_json::from_slice(body)
            .map(Gossip::Claim)
            .map_err(|e| e.to_string()),
        Some((tag, _)) => Err(format!("unknown message type {tag}")),
        None => Err("empty message".into()),
    }
}

/// Messages one after the other, each with a 4-byte big-endian length.
pub fn frame_all(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msgs.iter().map(|m| m.len() + 4).sum());
    for m in msgs {
        out.extend_from_slice(&(m.len() as u32).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

pub fn unframe_all(mut buf: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < 4 {
            return Err("truncated state".into());
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        buf = &buf[4..];
        if buf.len() < len {
            return Err("truncated state".into());
        }
        out.push(buf[..len].to_vec());
        buf = &buf[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let e = Entry {
            firing: vec![1, 2],
            resolved: vec![],
            timestamp: Timestamp::from_second(10).unwrap(),
            expires_at: Timestamp::from_second(20).unwrap(),
            receiver_data: Default::default(),
        };
        let msgs = vec![encode(&Gossip::Nflog("k".into(), e.clone()))];
        let back = unframe_all(&frame_all(&msgs)).unwrap();
        match decode(&back[0]).unwrap() {
            Gossip::Nflog(k, got) => {
                assert_eq!(k, "k");
                assert_eq!(got, e);
            }
            _ => panic!("wrong kind"),
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[SILENCE, 0xff, 0xff]).is_err());
        assert!(unframe_all(&[0, 0, 0, 9, 1]).is_err());
    }
}
