//! Alertmanager's protobuf messages for silences and the notification log
//! (`silence/silencepb`, `nflog/nflogpb`): the records of its snapshot files
//! and of its gossip. Herald reads them to import an Alertmanager data
//! directory and will send and receive them between cluster peers, so the
//! state a Herald cluster exchanges has Alertmanager's shape and merge rules.

use jiff::Timestamp;
use prost::Message;

use crate::matcher::{MatchType, Matchers};
use crate::silence::{api_matcher, Silence};

#[derive(Clone, PartialEq, Message)]
pub struct PbTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMatcher {
    /// EQUAL = 0, REGEXP = 1, NOT_EQUAL = 2, NOT_REGEXP = 3.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub pattern: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbSilence {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, repeated, tag = "2")]
    pub matchers: Vec<PbMatcher>,
    #[prost(message, optional, tag = "3")]
    pub starts_at: Option<PbTimestamp>,
    #[prost(message, optional, tag = "4")]
    pub ends_at: Option<PbTimestamp>,
    #[prost(message, optional, tag = "5")]
    pub updated_at: Option<PbTimestamp>,
    #[prost(string, tag = "8")]
    pub created_by: String,
    #[prost(string, tag = "9")]
    pub comment: String,
    #[prost(btree_map = "string, string", tag = "10")]
    pub annotations: crate::silence::Annotations,
    /// Alertmanager 0.32 and later: OR-ed matcher sets, of which the v2 API
    /// makes one. 0.32.0–0.32.2 and 0.33.0 wrote snapshots with these alone
    /// (no field 2).
    #[prost(message, repeated, tag = "11")]
    pub matcher_sets: Vec<PbMatcherSet>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMatcherSet {
    #[prost(message, repeated, tag = "1")]
    pub matchers: Vec<PbMatcher>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMeshSilence {
    #[prost(message, optional, tag = "1")]
    pub silence: Option<PbSilence>,
    #[prost(message, optional, tag = "2")]
    pub expires_at: Option<PbTimestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbReceiver {
    #[prost(string, tag = "1")]
    pub group_name: String,
    #[prost(string, tag = "2")]
    pub integration: String,
    #[prost(uint32, tag = "3")]
    pub idx: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub group_key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub receiver: Option<PbReceiver>,
    #[prost(message, optional, tag = "5")]
    pub timestamp: Option<PbTimestamp>,
    #[prost(uint64, repeated, tag = "6")]
    pub firing_alerts: Vec<u64>,
    #[prost(uint64, repeated, tag = "7")]
    pub resolved_alerts: Vec<u64>,
    /// Since Alertmanager 0.32 (Slack's `update_message` state).
    #[prost(map = "string, message", tag = "8")]
    pub receiver_data: std::collections::HashMap<String, PbReceiverDataValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbReceiverDataValue {
    #[prost(oneof = "PbReceiverDataKind", tags = "1, 2, 3")]
    pub value: Option<PbReceiverDataKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbReceiverDataKind {
    #[prost(string, tag = "1")]
    StrVal(String),
    #[prost(int64, tag = "2")]
    IntVal(i64),
    #[prost(double, tag = "3")]
    DoubleVal(f64),
}

/// An entry's receiver data as Herald keeps it; a value of no kind (a
/// newer Alertmanager's) is left out.
pub fn receiver_data_from_pb(
    m: std::collections::HashMap<String, PbReceiverDataValue>,
) -> crate::nflog::ReceiverData {
    use crate::nflog::ReceiverDataValue as V;
    m.into_iter()
        .filter_map(|(k, v)| {
            let v = match v.value? {
                PbReceiverDataKind::StrVal(s) => V::Str(s),
                PbReceiverDataKind::IntVal(i) => V::Int(i),
                PbReceiverDataKind::DoubleVal(d) => V::Double(d),
            };
            Some((k, v))
        })
        .collect()
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMeshEntry {
    #[prost(message, optional, tag = "1")]
    pub entry: Option<PbEntry>,
    #[prost(message, optional, tag = "2")]
    pub expires_at: Option<PbTimestamp>,
}

/// A protobuf timestamp; a missing one is Go's zero time.
pub fn time(t: &Option<PbTimestamp>) -> Timestamp {
    t.as_ref()
        .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
        .unwrap_or(crate::model::GO_ZERO_TIME)
}

fn pb_time(t: Timestamp) -> Option<PbTimestamp> {
    Some(PbTimestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

/// A silence and the time until which peers keep it. The matchers go in
/// both the legacy field and one matcher set, as Alertmanager 0.33.1 writes
/// them, so peers and readers before and after 0.32 all see them.
pub fn silence_to_pb(s: &Silence, expires_at: Timestamp) -> PbMeshSilence {
    let matchers: Vec<PbMatcher> = s
        .matchers
        .0
        .iter()
        .map(|m| PbMatcher {
            kind: match m.kind {
                MatchType::Equal => 0,
                MatchType::Regexp => 1,
                MatchType::NotEqual => 2,
                MatchType::NotRegexp => 3,
            },
            name: m.name.to_string(),
            pattern: m.value.to_string(),
        })
        .collect();
    PbMeshSilence {
        silence: Some(PbSilence {
            id: s.id.clone(),
            matcher_sets: vec![PbMatcherSet {
                matchers: matchers.clone(),
            }],
            matchers,
            starts_at: pb_time(s.starts_at),
            ends_at: pb_time(s.ends_at),
            updated_at: pb_time(s.updated_at),
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            annotations: s.annotations.clone(),
        }),
        expires_at: pb_time(expires_at),
    }
}

/// The silence of a message (`None` for a message without one); a matcher
/// that does not compile is an error, so a bad record is never half-read.
/// The matcher set wins over the legacy field, as in
/// `postprocessUnmarshalledSilence`. A silence of several sets (OR-ed) is an
/// error rather than a narrower or wider silence: Herald keeps one set, and
/// Alertmanager's own v2 API refuses to show such silences.
pub fn silence_from_pb(m: PbMeshSilence) -> Result<Option<(Silence, Timestamp)>, String> {
    let expires = time(&m.expires_at);
    let Some(mut s) = m.silence else {
        return Ok(None);
    };
    let pms = match s.matcher_sets.len() {
        0 => std::mem::take(&mut s.matchers),
        1 => s.matcher_sets.remove(0).matchers,
        n => {
            return Err(format!(
                "silence {:?} has {n} matcher sets; Herald supports one",
                s.id
            ))
        }
    };
    let matchers = pms
        .iter()
        .map(|pm| {
            let (is_regex, is_equal) = match pm.kind {
                1 => (true, true),
                2 => (false, false),
                3 => (true, false),
                _ => (false, true),
            };
            api_matcher(&pm.name, &pm.pattern, is_regex, is_equal)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((
        Silence {
            id: s.id,
            matchers: Matchers(matchers),
            starts_at: time(&s.starts_at),
            ends_at: time(&s.ends_at),
            updated_at: time(&s.updated_at),
            created_by: s.created_by,
            comment: s.comment,
            annotations: s.annotations,
        },
        expires,
    )))
}

/// A notification-log entry under its state key (`groupKey:name/integration/idx`,
/// as `nflog::state_key` writes it) as Alertmanager gossips it. `None` when
/// the key has no receiver part to split off.
pub fn entry_to_pb(key: &str, e: &crate::nflog::Entry) -> Option<PbMeshEntry> {
    // The receiver part is the last `:`-separated piece with two slashes:
    // integration names and indexes hold neither, a group key ends in `}`.
    let (rest, idx) = key.rsplit_once('/')?;
    let (rest, integration) = rest.rsplit_once('/')?;
    let cut = rest.rfind("}:").map(|i| i + 1)?;
    let (group_key, name) = (&rest[..cut], &rest[cut + 1..]);
    let receiver_data = e
        .receiver_data
        .iter()
        .map(|(k, v)| {
            use crate::nflog::ReceiverDataValue as V;
            let kind = match v {
                V::Str(s) => PbReceiverDataKind::StrVal(s.clone()),
                V::Int(i) => PbReceiverDataKind::IntVal(*i),
                V::Double(d) => PbReceiverDataKind::DoubleVal(*d),
            };
            (k.clone(), PbReceiverDataValue { value: Some(kind) })
        })
        .collect();
    Some(PbMeshEntry {
        entry: Some(PbEntry {
            group_key: group_key.as_bytes().to_vec(),
            receiver: Some(PbReceiver {
                group_name: name.to_string(),
                integration: integration.to_string(),
                idx: idx.parse().ok()?,
            }),
            timestamp: pb_time(e.timestamp),
            firing_alerts: e.firing.clone(),
            resolved_alerts: e.resolved.clone(),
            receiver_data,
        }),
        expires_at: pb_time(e.expires_at),
    })
}

/// The inverse of `entry_to_pb`; `None` for a record without an entry.
pub fn entry_from_pb(m: PbMeshEntry) -> Option<(String, crate::nflog::Entry)> {
    let expires_at = time(&m.expires_at);
    let e = m.entry?;
    let r = e.receiver.unwrap_or_default();
    let key = format!(
        "{}:{}/{}/{}",
        String::from_utf8_lossy(&e.group_key),
        r.group_name,
        r.integration,
        r.idx
    );
    Some((
        key,
        crate::nflog::Entry {
            firing: e.firing_alerts,
            resolved: e.resolved_alerts,
            timestamp: time(&e.timestamp),
            expires_at,
            receiver_data: receiver_data_from_pb(e.receiver_data),
        },
    ))
}

/// Messages written one after another, each prefixed by its varint length
/// (Alertmanager's snapshot files and full-state exchanges).
pub fn encode_delimited<M: Message>(msgs: impl IntoIterator<Item = M>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        // Writing into a Vec cannot run out of space.
        let _ = m.encode_length_delimited(&mut out);
    }
    out
}

/// The inverse of `encode_delimited`; a truncated buffer is an error.
pub fn decode_delimited<M: Message + Default>(mut buf: &[u8]) -> Result<Vec<M>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(M::decode_length_delimited(&mut buf).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Matcher;

    #[test]
    fn log_entries_round_trip_through_alertmanagers_format() {
        let e = crate::nflog::Entry {
            firing: vec![1, 2],
            resolved: vec![3],
            timestamp: Timestamp::from_second(10).unwrap(),
            expires_at: Timestamp::from_second(20).unwrap(),
            receiver_data: [(
                "threadTs".to_string(),
                crate::nflog::ReceiverDataValue::Str("1.5".into()),
            )]
            .into(),
        };
        // Colons and slashes in label values and the receiver's name.
        let key = r#"{}/{team="a"}:{alertname="x:y/z}:w"}:ops/eu:1/slack/2"#;
        let pb = entry_to_pb(key, &e).unwrap();
        let inner = pb.entry.clone().unwrap();
        assert_eq!(
            inner.group_key,
            br#"{}/{team="a"}:{alertname="x:y/z}:w"}"#.to_vec()
        );
        let r = inner.receiver.unwrap();
        assert_eq!(
            (r.group_name.as_str(), r.integration.as_str(), r.idx),
            ("ops/eu:1", "slack", 2)
        );
        assert_eq!(entry_from_pb(pb), Some((key.to_string(), e.clone())));
        assert!(entry_to_pb("no receiver", &e).is_none());
    }

    #[test]
    fn silences_round_trip_through_alertmanagers_format() {
        let t = |s| Timestamp::from_second(s).unwrap();
        let s = Silence {
            id: "a".into(),
            matchers: Matchers(vec![
                Matcher::new(MatchType::Regexp, "instance", "db.*").unwrap(),
                Matcher::new(MatchType::NotEqual, "env", "dev").unwrap(),
            ]),
            starts_at: t(100),
            ends_at: t(200),
            updated_at: Timestamp::new(150, 123_456_789).unwrap(),
            created_by: "me".into(),
            comment: "c".into(),
            annotations: [("ticket".to_string(), "T-1".to_string())].into(),
        };
        let buf = encode_delimited([silence_to_pb(&s, t(900)), silence_to_pb(&s, t(901))]);
        let back: Vec<PbMeshSilence> = decode_delimited(&buf).unwrap();
        assert_eq!(back.len(), 2);
        let (got, expires) = silence_from_pb(back[0].clone()).unwrap().unwrap();
        assert_eq!(got, s);
        assert_eq!(expires, t(900));
        assert!(decode_delimited::<PbMeshSilence>(&buf[..buf.len() - 1]).is_err());
    }

    fn silence() -> Silence {
        Silence {
            id: "8d3c3e8e-0c5b-4f0e-9d43-3a1f6c9b2a10".into(),
            matchers: Matchers(vec![
                Matcher::new(MatchType::Equal, "alertname", "Disk").unwrap(),
                Matcher::new(MatchType::NotRegexp, "env", "dev|test").unwrap(),
            ]),
            starts_at: Timestamp::new(1_700_000_000, 5).unwrap(),
            ends_at: Timestamp::new(1_700_003_600, 999_999_999).unwrap(),
            updated_at: Timestamp::new(1_700_000_000, 0).unwrap(),
            created_by: "me".into(),
            comment: "a comment".into(),
            annotations: [
                ("ticket".to_string(), "T-1".to_string()),
                ("url".to_string(), "https://example.org/x".to_string()),
            ]
            .into(),
        }
    }

    /// The size limit counts what Alertmanager's `proto.Size` counts: the
    /// message with the matcher set and without the legacy matchers.
    #[test]
    fn size_limit_counts_the_protobuf_alertmanager_measures() {
        let s = silence();
        let expires = Timestamp::new(1_700_500_000, 0).unwrap();
        let mut pb = silence_to_pb(&s, expires);
        pb.silence.as_mut().unwrap().matchers.clear();
        assert_eq!(crate::silence::encoded_size(&s, expires), pb.encoded_len());
        let mut bare = s.clone();
        bare.annotations.clear();
        bare.comment.clear();
        let mut pb = silence_to_pb(&bare, expires);
        pb.silence.as_mut().unwrap().matchers.clear();
        assert_eq!(
            crate::silence::encoded_size(&bare, expires),
            pb.encoded_len()
        );
    }

    /// 0.32.0–0.32.2 and 0.33.0 wrote matcher sets only; older releases the
    /// legacy field only; both read back to the same silence.
    #[test]
    fn matchers_come_from_the_set_or_the_legacy_field() {
        let s = silence();
        let expires = Timestamp::new(1_700_500_000, 0).unwrap();
        let mut sets_only = silence_to_pb(&s, expires);
        sets_only.silence.as_mut().unwrap().matchers.clear();
        let mut legacy_only = silence_to_pb(&s, expires);
        legacy_only.silence.as_mut().unwrap().matcher_sets.clear();
        for m in [sets_only, legacy_only] {
            let back = PbMeshSilence::decode(&m.encode_to_vec()[..]).unwrap();
            assert_eq!(silence_from_pb(back).unwrap().unwrap().0, s);
        }
        let mut two = silence_to_pb(&s, expires);
        let set = two.silence.as_ref().unwrap().matcher_sets[0].clone();
        two.silence.as_mut().unwrap().matcher_sets.push(set);
        assert!(silence_from_pb(two).unwrap_err().contains("2 matcher sets"));
    }
}
