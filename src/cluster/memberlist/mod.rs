//! HashiCorp memberlist's wire protocol, the one Alertmanager's cluster
//! speaks: the first step toward a Herald node joining a running
//! Alertmanager cluster (issue 19).
//!
//! Written from memberlist's Go source (0.5, as Debian builds Alertmanager
//! 0.33.1 with) for the behaviour, not ported: `members` is the membership
//! (SWIM with Lifeguard) that `peer` runs, `msgpack` is the slice of
//! go-msgpack's encoding memberlist relies on, `message` its message
//! structs, `packet` the envelopes (label, CRC, compound, compression),
//! `stream` the TCP push/pull and ping, `delegate_state` Alertmanager's
//! state inside a push/pull, and `responder` a minimal member that
//! answers probes (the tests' stand-in). docs/clustering.md has the design.

// The responder and a few codec helpers serve only the tests against a
// real Alertmanager (`system-tests`): without this they would warn in a
// normal and a plain `cargo test` build.
#![cfg_attr(not(all(test, feature = "system-tests")), allow(dead_code))]

pub(crate) mod delegate_state;
pub(crate) mod members;
pub(crate) mod message;
pub(crate) mod msgpack;
pub(crate) mod packet;
pub(crate) mod responder;
pub(crate) mod stream;

#[cfg(all(test, feature = "system-tests"))]
mod system_tests;

use message::MessageType;

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("message ends early")]
    Truncated,
    #[error("malformed msgpack: {0}")]
    Msgpack(&'static str),
    #[error("{0}: bad field {1}")]
    Field(&'static str, &'static str),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("expected a {want:?} message, got {got:?}")]
    Unexpected { want: MessageType, got: MessageType },
    #[error("label {got:?} where {want:?} was expected")]
    LabelMismatch { want: String, got: String },
    #[error("label header with an empty label")]
    EmptyLabel,
    #[error("label of {0} bytes; at most 255")]
    LabelTooLong(usize),
    #[error("CRC mismatch: header says {want:#010x}, message has {got:#010x}")]
    BadCrc { want: u32, got: u32 },
    #[error("unknown compression algorithm {0}")]
    UnknownCompression(u8),
    #[error("LZW: {0}")]
    Lzw(String),
    #[error("{0} too large")]
    TooLarge(&'static str),
    #[error("encrypted memberlist traffic is not supported")]
    Encrypted,
    #[error("remote error: {0}")]
    Remote(String),
    #[error("ping for another node {0:?}")]
    NotForUs(String),
    #[error("protobuf: {0}")]
    Protobuf(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
