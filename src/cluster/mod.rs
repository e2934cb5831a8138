//! High availability (`cluster`): the state Herald replicas share.
//!
//! Alertmanager replicas gossip two states, silences and the notification
//! log, and merge what they receive with last-writer-wins rules. This
//! module holds what does not depend on the transport: Alertmanager's
//! message format (`wire`) and the merge rules, which live beside the
//! states themselves (`Silences::merge`). Membership and gossip (SWIM via
//! the `foca` crate, push/pull over TCP, settle and peer position) are not
//! built yet: a Herald node runs alone and its status says `disabled`.
//! docs/clustering.md has the design.

pub mod wire;
