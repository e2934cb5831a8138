//! Reading Alertmanager's data directory: its `silences` and `nflog`
//! snapshot files (varint-length-delimited `MeshSilence` / `MeshEntry`
//! protobufs, `silence/silencepb`, `nflog/nflogpb`), imported into a new
//! Herald database so users keep their silences and Herald does not repeat
//! notifications Alertmanager already sent.

use std::path::Path;

use jiff::Timestamp;
use prost::Message;

use crate::cluster::wire::{self, PbMeshEntry, PbMeshSilence};
use crate::nflog::Entry;
use crate::silence::Silence;

#[derive(Debug, thiserror::Error)]
#[error("reading Alertmanager's {file}: {message}")]
pub struct ImportError {
    pub file: String,
    pub message: String,
}

use wire::time;

/// Splits a snapshot into its length-delimited messages.
fn messages<M: Message + Default>(path: &Path) -> Result<Vec<M>, ImportError> {
    let err = |message: String| ImportError {
        file: path.display().to_string(),
        message,
    };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut buf = &data[..];
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(M::decode_length_delimited(&mut buf).map_err(|e| err(e.to_string()))?);
    }
    Ok(out)
}

/// Silences from `<dir>/silences` not yet past their retention, with the
/// time until which each must be kept.
pub fn silences(dir: &Path, now: Timestamp) -> Result<Vec<(Silence, Timestamp)>, ImportError> {
    let path = dir.join("silences");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for m in messages::<PbMeshSilence>(&path)? {
        let expires = time(&m.expires_at);
        if expires <= now {
            continue;
        }
        let Some((silence, expires)) = wire::silence_from_pb(m).map_err(|message| ImportError {
            file: path.display().to_string(),
            message,
        })?
        else {
            continue;
        };
        out.push((silence, expires));
    }
    Ok(out)
}

/// Notification-log entries from `<dir>/nflog` that have not expired, keyed
/// as Herald and Alertmanager both key them.
pub fn nflog(dir: &Path, now: Timestamp) -> Result<Vec<(String, Entry)>, ImportError> {
    let path = dir.join("nflog");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for m in messages::<PbMeshEntry>(&path)? {
        if time(&m.expires_at) <= now {
            continue;
        }
        out.extend(wire::entry_from_pb(m));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::{PbEntry, PbMatcher, PbReceiver, PbSilence, PbTimestamp};

    #[test]
    fn reads_length_delimited_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let ts = |s| {
            Some(PbTimestamp {
                seconds: s,
                nanos: 0,
            })
        };
        let mut buf = Vec::new();
        for (id, expires) in [("live", 5000), ("old", 10)] {
            PbMeshSilence {
                silence: Some(PbSilence {
                    id: id.into(),
                    matchers: vec![PbMatcher {
                        kind: 1,
                        name: "instance".into(),
                        pattern: "a|b".into(),
                    }],
                    starts_at: ts(100),
                    ends_at: ts(200),
                    updated_at: ts(100),
                    created_by: "am".into(),
                    comment: "c".into(),
                    ..Default::default()
                }),
                expires_at: ts(expires),
            }
            .encode_length_delimited(&mut buf)
            .unwrap();
        }
        std::fs::write(dir.path().join("silences"), &buf).unwrap();
        let now = Timestamp::from_second(1000).unwrap();
        let got = silences(dir.path(), now).unwrap();
        assert_eq!(got.len(), 1, "expired entries are not imported");
        assert_eq!(got[0].0.id, "live");
        assert_eq!(got[0].0.matchers.to_string(), r#"{instance=~"a|b"}"#);

        let mut buf = Vec::new();
        PbMeshEntry {
            entry: Some(PbEntry {
                group_key: b"{}:{alertname=\"A\"}".to_vec(),
                receiver: Some(PbReceiver {
                    group_name: "team".into(),
                    integration: "webhook".into(),
                    idx: 0,
                }),
                timestamp: ts(900),
                firing_alerts: vec![7, 3],
                resolved_alerts: vec![],
                receiver_data: [(
                    "threadTs".to_string(),
                    crate::cluster::wire::PbReceiverDataValue {
                        value: Some(crate::cluster::wire::PbReceiverDataKind::StrVal(
                            "1.5".into(),
                        )),
                    },
                )]
                .into(),
            }),
            expires_at: ts(5000),
        }
        .encode_length_delimited(&mut buf)
        .unwrap();
        std::fs::write(dir.path().join("nflog"), &buf).unwrap();
        let got = nflog(dir.path(), now).unwrap();
        assert_eq!(got[0].0, r#"{}:{alertname="A"}:team/webhook/0"#);
        assert_eq!(got[0].1.firing, vec![7, 3]);
        assert_eq!(got[0].1.receiver_data["threadTs"].as_str(), Some("1.5"));
        std::fs::write(dir.path().join("nflog"), b"\x05abc").unwrap();
        assert!(
            nflog(dir.path(), now).is_err(),
            "a truncated file is an error, not an empty log"
        );
    }
}
