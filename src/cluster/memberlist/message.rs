//! Memberlist's messages: a type byte, then one msgpack-encoded struct.
//!
//! The numbering is memberlist's `messageType` iota (net.go), which its
//! authors only ever append to; `hasLabel` is 244, far from the rest, so a
//! receiver tells a label header from a message or an encryption version.
//! Each struct is written as go-msgpack writes the Go struct of the same
//! name: a map of its fields by Go name, sorted by name, `omitempty` fields
//! left out when zero (see `msgpack`). Field names are part of the wire.

use super::msgpack::{Fields, Reader, Writer};
use super::Error;

/// The first byte of every packet, stream and compound part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MessageType {
    Ping = 0,
    IndirectPing = 1,
    Ack = 2,
    Suspect = 3,
    Alive = 4,
    Dead = 5,
    PushPull = 6,
    Compound = 7,
    User = 8,
    Compress = 9,
    Encrypt = 10,
    Nack = 11,
    HasCrc = 12,
    Err = 13,
    HasLabel = 244,
}

impl TryFrom<u8> for MessageType {
    type Error = Error;
    fn try_from(b: u8) -> Result<Self, Error> {
        use MessageType::*;
        Ok(match b {
            0 => Ping,
            1 => IndirectPing,
            2 => Ack,
            3 => Suspect,
            4 => Alive,
            5 => Dead,
            6 => PushPull,
            7 => Compound,
            8 => User,
            9 => Compress,
            10 => Encrypt,
            11 => Nack,
            12 => HasCrc,
            13 => Err,
            244 => HasLabel,
            other => return Result::Err(Error::UnknownType(other)),
        })
    }
}

/// A message body: one of memberlist's Go structs.
pub(crate) trait Body: Sized {
    const TYPE: MessageType;
    /// Go's struct name, for errors.
    const NAME: &'static str;
    /// Writes the struct as a map, fields sorted by name.
    fn write(&self, w: &mut Writer);
    fn read(f: &Fields) -> Result<Self, Error>;
}

/// The body alone (no type byte), as memberlist encodes a struct into a
/// stream after the type byte it wrote itself.
pub(crate) fn encode_body<B: Body>(b: &B) -> Vec<u8> {
    let mut w = Writer::default();
    b.write(&mut w);
    w.buf
}

/// A whole message: type byte then body (memberlist's `encode`).
pub(crate) fn encode<B: Body>(b: &B) -> Vec<u8> {
    let mut w = Writer {
        buf: vec![B::TYPE as u8],
    };
    b.write(&mut w);
    w.buf
}

/// Reads one body from the front of `buf`, returning it and the bytes it
/// took (a stream carries more after it).
pub(crate) fn decode_body<B: Body>(buf: &[u8]) -> Result<(B, usize), Error> {
    let mut r = Reader::new(buf);
    let v = r.value()?;
    Ok((B::read(&Fields::new(v, B::NAME)?)?, r.position()))
}

/// `ping`: a probe sent straight to a node. `node` lets the target check it
/// is the one meant (a restarted agent under a new name ignores it); the
/// source fields, left out when empty, say where to answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Ping {
    pub(crate) seq_no: u32,
    pub(crate) node: String,
    pub(crate) source_addr: Vec<u8>,
    pub(crate) source_port: u16,
    pub(crate) source_node: String,
}

impl Body for Ping {
    const TYPE: MessageType = MessageType::Ping;
    const NAME: &'static str = "ping";
    fn write(&self, w: &mut Writer) {
        let n = 2
            + usize::from(!self.source_addr.is_empty())
            + usize::from(self.source_port != 0)
            + usize::from(!self.source_node.is_empty());
        w.map_len(n);
        w.str("Node");
        w.str(&self.node);
        w.str("SeqNo");
        w.uint(self.seq_no.into());
        write_source(w, &self.source_addr, &self.source_node, self.source_port);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(Ping {
            seq_no: f.num("SeqNo")?,
            node: f.string("Node")?,
            source_addr: f.bytes("SourceAddr")?,
            source_port: f.num("SourcePort")?,
            source_node: f.string("SourceNode")?,
        })
    }
}

/// The three `omitempty` source fields of `ping` and `indirectPingReq`,
/// in name order (SourceAddr < SourceNode < SourcePort).
fn write_source(w: &mut Writer, addr: &[u8], node: &str, port: u16) {
    if !addr.is_empty() {
        w.str("SourceAddr");
        w.raw(addr);
    }
    if !node.is_empty() {
        w.str("SourceNode");
        w.str(node);
    }
    if port != 0 {
        w.str("SourcePort");
        w.uint(port.into());
    }
}

/// `indirectPingReq`: asks a node to probe `target` for the sender.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct IndirectPing {
    pub(crate) seq_no: u32,
    pub(crate) target: Vec<u8>,
    pub(crate) port: u16,
    pub(crate) node: String,
    /// Whether the sender wants a nack when the target stays silent.
    pub(crate) nack: bool,
    pub(crate) source_addr: Vec<u8>,
    pub(crate) source_port: u16,
    pub(crate) source_node: String,
}

impl Body for IndirectPing {
    const TYPE: MessageType = MessageType::IndirectPing;
    const NAME: &'static str = "indirectPingReq";
    fn write(&self, w: &mut Writer) {
        let n = 5
            + usize::from(!self.source_addr.is_empty())
            + usize::from(self.source_port != 0)
            + usize::from(!self.source_node.is_empty());
        w.map_len(n);
        w.str("Nack");
        w.bool(self.nack);
        w.str("Node");
        w.str(&self.node);
        w.str("Port");
        w.uint(self.port.into());
        w.str("SeqNo");
        w.uint(self.seq_no.into());
        write_source(w, &self.source_addr, &self.source_node, self.source_port);
        w.str("Target");
        w.raw(&self.target);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(IndirectPing {
            seq_no: f.num("SeqNo")?,
            target: f.bytes("Target")?,
            port: f.num("Port")?,
            node: f.string("Node")?,
            nack: f.bool("Nack")?,
            source_addr: f.bytes("SourceAddr")?,
            source_port: f.num("SourcePort")?,
            source_node: f.string("SourceNode")?,
        })
    }
}

/// `ackResp`: the answer to a ping. Alertmanager's ping delegate sends an
/// empty payload; memberlist's own acks a nil one (`0xc0`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Ack {
    pub(crate) seq_no: u32,
    pub(crate) payload: Option<Vec<u8>>,
}

impl Body for Ack {
    const TYPE: MessageType = MessageType::Ack;
    const NAME: &'static str = "ackResp";
    fn write(&self, w: &mut Writer) {
        w.map_len(2);
        w.str("Payload");
        w.bytes_or_nil(self.payload.as_deref());
        w.str("SeqNo");
        w.uint(self.seq_no.into());
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        let payload = f.bytes("Payload")?;
        Ok(Ack {
            seq_no: f.num("SeqNo")?,
            payload: (!payload.is_empty()).then_some(payload),
        })
    }
}

/// `nackResp`: an indirect probe was tried and the target did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Nack {
    pub(crate) seq_no: u32,
}

impl Body for Nack {
    const TYPE: MessageType = MessageType::Nack;
    const NAME: &'static str = "nackResp";
    fn write(&self, w: &mut Writer) {
        w.map_len(1);
        w.str("SeqNo");
        w.uint(self.seq_no.into());
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(Nack {
            seq_no: f.num("SeqNo")?,
        })
    }
}

/// `errResp`: the remote end's error on a stream (e.g. a refused
/// push/pull), relayed as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ErrResp {
    pub(crate) error: String,
}

impl Body for ErrResp {
    const TYPE: MessageType = MessageType::Err;
    const NAME: &'static str = "errResp";
    fn write(&self, w: &mut Writer) {
        w.map_len(1);
        w.str("Error");
        w.str(&self.error);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(ErrResp {
            error: f.string("Error")?,
        })
    }
}

/// `suspect` and `dead` share their fields: a node, the incarnation the
/// accusation is about, and who accuses (for `dead` from itself, a node
/// leaving).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Accusation {
    pub(crate) incarnation: u32,
    pub(crate) node: String,
    pub(crate) from: String,
}

impl Accusation {
    fn write(&self, w: &mut Writer) {
        w.map_len(3);
        w.str("From");
        w.str(&self.from);
        w.str("Incarnation");
        w.uint(self.incarnation.into());
        w.str("Node");
        w.str(&self.node);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(Accusation {
            incarnation: f.num("Incarnation")?,
            node: f.string("Node")?,
            from: f.string("From")?,
        })
    }
}

/// `suspect`: the sender's probes of `node` failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Suspect(pub(crate) Accusation);

impl Body for Suspect {
    const TYPE: MessageType = MessageType::Suspect;
    const NAME: &'static str = "suspect";
    fn write(&self, w: &mut Writer) {
        self.0.write(w)
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Accusation::read(f).map(Suspect)
    }
}

/// `dead`: `node` is confirmed dead, or left when `from` is itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Dead(pub(crate) Accusation);

impl Body for Dead {
    const TYPE: MessageType = MessageType::Dead;
    const NAME: &'static str = "dead";
    fn write(&self, w: &mut Writer) {
        self.0.write(w)
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Accusation::read(f).map(Dead)
    }
}

/// The six protocol and delegate versions a node speaks, in memberlist's
/// order: protocol min, max, current, delegate min, max, current.
/// Alertmanager 0.33.1 (memberlist 0.5) sends `[1, 5, 2, 0, 0, 0]`.
pub(crate) const VSN: [u8; 6] = [1, 5, 2, 0, 0, 0];

/// `alive`: a node announces itself (joining, or refuting a suspicion with
/// a higher incarnation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Alive {
    pub(crate) incarnation: u32,
    pub(crate) node: String,
    /// 4 bytes for IPv4 (memberlist shortens with `To4`), 16 for IPv6.
    pub(crate) addr: Vec<u8>,
    pub(crate) port: u16,
    pub(crate) meta: Vec<u8>,
    /// See `VSN`. A Go `[]uint8` is a `[]byte`, so it travels as a raw
    /// string, not an array of integers.
    pub(crate) vsn: Vec<u8>,
}

impl Body for Alive {
    const TYPE: MessageType = MessageType::Alive;
    const NAME: &'static str = "alive";
    fn write(&self, w: &mut Writer) {
        w.map_len(6);
        w.str("Addr");
        w.raw(&self.addr);
        w.str("Incarnation");
        w.uint(self.incarnation.into());
        w.str("Meta");
        w.raw(&self.meta);
        w.str("Node");
        w.str(&self.node);
        w.str("Port");
        w.uint(self.port.into());
        w.str("Vsn");
        w.raw(&self.vsn);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(Alive {
            incarnation: f.num("Incarnation")?,
            node: f.string("Node")?,
            addr: f.bytes("Addr")?,
            port: f.num("Port")?,
            meta: f.bytes("Meta")?,
            vsn: f.bytes("Vsn")?,
        })
    }
}

/// A member's state (memberlist's `NodeStateType`, a Go `int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    Alive,
    Suspect,
    Dead,
    Left,
    /// A value a newer memberlist may add; kept rather than refused, so one
    /// odd node does not fail a whole push/pull.
    Other(i64),
}

impl NodeState {
    fn to_int(self) -> i64 {
        match self {
            NodeState::Alive => 0,
            NodeState::Suspect => 1,
            NodeState::Dead => 2,
            NodeState::Left => 3,
            NodeState::Other(v) => v,
        }
    }
    fn from_int(v: i64) -> Self {
        match v {
            0 => NodeState::Alive,
            1 => NodeState::Suspect,
            2 => NodeState::Dead,
            3 => NodeState::Left,
            v => NodeState::Other(v),
        }
    }
}

/// `pushPullHeader`: how many node states follow, and how long the
/// delegate's state after them is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PushPullHeader {
    /// A Go `int`.
    pub(crate) nodes: usize,
    pub(crate) user_state_len: usize,
    /// A join (the first exchange) rather than a periodic anti-entropy run.
    pub(crate) join: bool,
}

impl Body for PushPullHeader {
    const TYPE: MessageType = MessageType::PushPull;
    const NAME: &'static str = "pushPullHeader";
    fn write(&self, w: &mut Writer) {
        w.map_len(3);
        w.str("Join");
        w.bool(self.join);
        w.str("Nodes");
        w.uint(self.nodes as u64);
        w.str("UserStateLen");
        w.uint(self.user_state_len as u64);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(PushPullHeader {
            nodes: f.num("Nodes")?,
            user_state_len: f.num("UserStateLen")?,
            join: f.bool("Join")?,
        })
    }
}

/// `userMsgHeader`: the length of a delegate message sent over a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct UserMsgHeader {
    pub(crate) user_msg_len: usize,
}

impl Body for UserMsgHeader {
    const TYPE: MessageType = MessageType::User;
    const NAME: &'static str = "userMsgHeader";
    fn write(&self, w: &mut Writer) {
        w.map_len(1);
        w.str("UserMsgLen");
        w.uint(self.user_msg_len as u64);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(UserMsgHeader {
            user_msg_len: f.num("UserMsgLen")?,
        })
    }
}

/// `pushNodeState`: one member as a push/pull carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushNodeState {
    pub(crate) name: String,
    pub(crate) addr: Vec<u8>,
    pub(crate) port: u16,
    pub(crate) meta: Vec<u8>,
    pub(crate) incarnation: u32,
    pub(crate) state: NodeState,
    pub(crate) vsn: Vec<u8>,
}

impl Body for PushNodeState {
    // Sent after the header inside a push/pull; it has no type of its own.
    const TYPE: MessageType = MessageType::PushPull;
    const NAME: &'static str = "pushNodeState";
    fn write(&self, w: &mut Writer) {
        w.map_len(7);
        w.str("Addr");
        w.raw(&self.addr);
        w.str("Incarnation");
        w.uint(self.incarnation.into());
        w.str("Meta");
        w.raw(&self.meta);
        w.str("Name");
        w.str(&self.name);
        w.str("Port");
        w.uint(self.port.into());
        w.str("State");
        w.int(self.state.to_int());
        w.str("Vsn");
        w.raw(&self.vsn);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(PushNodeState {
            name: f.string("Name")?,
            addr: f.bytes("Addr")?,
            port: f.num("Port")?,
            meta: f.bytes("Meta")?,
            incarnation: f.num("Incarnation")?,
            state: NodeState::from_int(f.num("State")?),
            vsn: f.bytes("Vsn")?,
        })
    }
}

/// `compress`: a message (type byte included) compressed with `Algo`; 0,
/// LZW, is the only one memberlist knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Compress {
    pub(crate) algo: u8,
    pub(crate) buf: Vec<u8>,
}

impl Body for Compress {
    const TYPE: MessageType = MessageType::Compress;
    const NAME: &'static str = "compress";
    fn write(&self, w: &mut Writer) {
        w.map_len(2);
        w.str("Algo");
        w.uint(self.algo.into());
        w.str("Buf");
        w.raw(&self.buf);
    }
    fn read(f: &Fields) -> Result<Self, Error> {
        Ok(Compress {
            algo: f.num("Algo")?,
            buf: f.bytes("Buf")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<B: Body + PartialEq + std::fmt::Debug>(b: B) {
        let buf = encode(&b);
        assert_eq!(buf[0], B::TYPE as u8);
        let (back, used) = decode_body::<B>(&buf[1..]).unwrap();
        assert_eq!(back, b);
        assert_eq!(used, buf.len() - 1);
    }

    fn alive() -> Alive {
        Alive {
            incarnation: 3,
            node: "herald-1".into(),
            addr: vec![127, 0, 0, 1],
            port: 9094,
            meta: vec![],
            vsn: VSN.to_vec(),
        }
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Ping {
            seq_no: 70_000,
            node: "am".into(),
            source_addr: vec![10, 0, 0, 1],
            source_port: 9094,
            source_node: "h".into(),
        });
        round_trip(Ping::default());
        round_trip(IndirectPing {
            seq_no: 1,
            target: vec![10, 0, 0, 2],
            port: 7946,
            node: "b".into(),
            nack: true,
            ..Default::default()
        });
        round_trip(Ack {
            seq_no: 9,
            payload: Some(b"x".to_vec()),
        });
        round_trip(Ack {
            seq_no: 9,
            payload: None,
        });
        round_trip(Nack { seq_no: 4 });
        round_trip(ErrResp {
            error: "nope".into(),
        });
        round_trip(Suspect(Accusation {
            incarnation: 2,
            node: "a".into(),
            from: "b".into(),
        }));
        round_trip(Dead(Accusation::default()));
        round_trip(alive());
        round_trip(PushPullHeader {
            nodes: 2,
            user_state_len: 300_000,
            join: true,
        });
        round_trip(UserMsgHeader { user_msg_len: 12 });
        round_trip(PushNodeState {
            name: "01HXYZ".into(),
            addr: vec![0; 16],
            port: 1,
            meta: b"m".to_vec(),
            incarnation: u32::MAX,
            state: NodeState::Left,
            vsn: VSN.to_vec(),
        });
        round_trip(Compress {
            algo: 0,
            buf: vec![1, 2, 3],
        });
    }

    /// The bytes memberlist 0.5 with go-msgpack 0.5.5 writes for
    /// `encode(aliveMsg, &alive{Incarnation: 3, Node: "herald-1", Addr:
    /// 127.0.0.1 (To4), Port: 9094, Meta: []byte{}, Vsn: [1 5 2 0 0 0]})`,
    /// derived by hand from the encoder's rules: type byte 4; fixmap of 6;
    /// keys as fixstr in sorted order Addr, Incarnation, Meta, Node, Port,
    /// Vsn; the IP, the empty meta and Vsn as raw strings (0xa4, 0xa0,
    /// 0xa6); 3 a fixint; 9094 a uint16 (0xcd 0x23 0x86). The same bytes
    /// came out of go-msgpack 0.5.5 run on this struct.
    #[test]
    fn alive_is_written_as_go_msgpack_writes_it() {
        let mut want = vec![0x04, 0x86];
        want.extend([0xa4]);
        want.extend(b"Addr");
        want.extend([0xa4, 127, 0, 0, 1]);
        want.extend([0xab]);
        want.extend(b"Incarnation");
        want.extend([0x03]);
        want.extend([0xa4]);
        want.extend(b"Meta");
        want.extend([0xa0]);
        want.extend([0xa4]);
        want.extend(b"Node");
        want.extend([0xa8]);
        want.extend(b"herald-1");
        want.extend([0xa4]);
        want.extend(b"Port");
        want.extend([0xcd, 0x23, 0x86]);
        want.extend([0xa3]);
        want.extend(b"Vsn");
        want.extend([0xa6, 1, 5, 2, 0, 0, 0]);
        assert_eq!(encode(&alive()), want);
    }

    /// A ping as Alertmanager's memberlist sends one to a node it probes:
    /// `ping{SeqNo: 200, Node: "h", SourceAddr: 127.0.0.1, SourcePort:
    /// 9094, SourceNode: "am"}`; sorted keys Node, SeqNo, SourceAddr,
    /// SourceNode, SourcePort; 200 a uint8 (0xcc 0xc8). Without the source
    /// fields (omitempty) the map has two entries. Checked against
    /// go-msgpack 0.5.5 as the alive bytes were.
    #[test]
    fn ping_bytes_decode_and_omit_empty_source_fields() {
        let mut bytes = vec![0x85, 0xa4];
        bytes.extend(b"Node");
        bytes.extend([0xa1, b'h', 0xa5]);
        bytes.extend(b"SeqNo");
        bytes.extend([0xcc, 0xc8, 0xaa]);
        bytes.extend(b"SourceAddr");
        bytes.extend([0xa4, 127, 0, 0, 1, 0xaa]);
        bytes.extend(b"SourceNode");
        bytes.extend([0xa2, b'a', b'm', 0xaa]);
        bytes.extend(b"SourcePort");
        bytes.extend([0xcd, 0x23, 0x86]);
        let (p, used) = decode_body::<Ping>(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        let want = Ping {
            seq_no: 200,
            node: "h".into(),
            source_addr: vec![127, 0, 0, 1],
            source_port: 9094,
            source_node: "am".into(),
        };
        assert_eq!(p, want);
        assert_eq!(encode_body(&want), bytes);
        let bare = encode_body(&Ping {
            seq_no: 1,
            node: "h".into(),
            ..Default::default()
        });
        assert_eq!(bare[0], 0x82);
    }

    /// An ack as memberlist itself writes it (`ackResp{seq, nil}`): the nil
    /// payload is msgpack nil.
    #[test]
    fn ack_with_nil_payload() {
        let mut bytes = vec![0x82, 0xa7];
        bytes.extend(b"Payload");
        bytes.extend([0xc0, 0xa5]);
        bytes.extend(b"SeqNo");
        bytes.extend([0x07]);
        assert_eq!(
            decode_body::<Ack>(&bytes).unwrap().0,
            Ack {
                seq_no: 7,
                payload: None
            }
        );
        assert_eq!(
            encode_body(&Ack {
                seq_no: 7,
                payload: None
            }),
            bytes
        );
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        // Not a map.
        assert!(matches!(
            decode_body::<Ping>(&[0x93, 1, 2, 3]),
            Err(Error::Field("ping", _))
        ));
        // A port beyond u16.
        let mut w = Writer::default();
        w.map_len(1);
        w.str("Port");
        w.uint(70_000);
        assert!(matches!(
            decode_body::<Alive>(&w.buf),
            Err(Error::Field("alive", "Port"))
        ));
        assert!(matches!(
            MessageType::try_from(99),
            Err(Error::UnknownType(99))
        ));
    }
}
