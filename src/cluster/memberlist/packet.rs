//! The envelopes around messages: the `--cluster.label` header, the CRC
//! wrapper, compound messages and LZW compression.
//!
//! On a UDP packet memberlist layers them, outermost first: label
//! (`hasLabel`, added by its transport wrapper), encryption (not spoken
//! here: Alertmanager has no gossip key option), CRC (`hasCrc`, only to
//! nodes whose protocol max is 5 or more, which every Alertmanager since
//! 0.16 is), then the message, which may be `compress` around a
//! `compound` of messages. A TCP stream carries the label header first
//! and then one message, compressed whole when compression is on
//! (Alertmanager leaves memberlist's default, on).

use super::message::{decode_body, Body, Compress, MessageType};
use super::Error;

/// Labels are at most 255 bytes: the header's length is one byte.
pub(crate) const LABEL_MAX: usize = 255;

/// Prefixes `buf` with the label header; no header for an empty label, as
/// memberlist sends none then.
pub(crate) fn add_label(label: &str, buf: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = label_header(label)?;
    out.extend_from_slice(buf);
    Ok(out)
}

/// The bytes a labelled stream begins with.
pub(crate) fn label_header(label: &str) -> Result<Vec<u8>, Error> {
    if label.is_empty() {
        return Ok(Vec::new());
    }
    let len = u8::try_from(label.len()).map_err(|_| Error::LabelTooLong(label.len()))?;
    let mut out = Vec::with_capacity(2 + label.len());
    out.push(MessageType::HasLabel as u8);
    out.push(len);
    out.extend_from_slice(label.as_bytes());
    Ok(out)
}

/// Splits off a label header: the label (empty when there is none) and
/// the rest. An empty label in a header is an error, as in memberlist.
pub(crate) fn strip_label(buf: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    match buf {
        [first, rest @ ..] if *first == MessageType::HasLabel as u8 => {
            let (&len, rest) = rest.split_first().ok_or(Error::Truncated)?;
            if len == 0 {
                return Err(Error::EmptyLabel);
            }
            let len = usize::from(len);
            if rest.len() < len {
                return Err(Error::Truncated);
            }
            Ok((&rest[..len], &rest[len..]))
        }
        _ => Ok((&[], buf)),
    }
}

/// Wraps a message with `hasCrc` and the IEEE CRC-32 of the message.
pub(crate) fn add_crc(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(msg).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Checks and removes a CRC wrapper when there is one. Memberlist takes a
/// packet as CRC-wrapped only when it is at least 5 bytes long.
pub(crate) fn strip_crc(buf: &[u8]) -> Result<&[u8], Error> {
    if buf.len() >= 5 && buf[0] == MessageType::HasCrc as u8 {
        let want = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
        let got = crc32fast::hash(&buf[5..]);
        if got != want {
            return Err(Error::BadCrc { want, got });
        }
        return Ok(&buf[5..]);
    }
    Ok(buf)
}

/// `compoundMsg`: a count byte, each part's length as a big-endian u16,
/// then the parts. Callers keep to 255 parts of under 64 KiB
/// (a UDP packet is far smaller); more is an error, not a wrap.
pub(crate) fn make_compound(parts: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let count = u8::try_from(parts.len()).map_err(|_| Error::TooLarge("compound parts"))?;
    let mut out = vec![MessageType::Compound as u8, count];
    for p in parts {
        let len = u16::try_from(p.len()).map_err(|_| Error::TooLarge("compound part"))?;
        out.extend_from_slice(&len.to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// The parts of a compound message (after its type byte). Parts cut off
/// by the end of the packet are dropped, and counted, as memberlist does
/// (it logs them and handles the whole ones).
pub(crate) fn split_compound(buf: &[u8]) -> Result<(Vec<&[u8]>, usize), Error> {
    let (&count, mut rest) = buf.split_first().ok_or(Error::Truncated)?;
    let count = usize::from(count);
    if rest.len() < count * 2 {
        return Err(Error::Truncated);
    }
    let (lens, body) = rest.split_at(count * 2);
    rest = body;
    let mut parts = Vec::with_capacity(count);
    for (i, l) in lens.chunks_exact(2).enumerate() {
        let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
        if rest.len() < len {
            return Ok((parts, count - i));
        }
        let (part, after) = rest.split_at(len);
        parts.push(part);
        rest = after;
    }
    Ok((parts, 0))
}

/// Go's `compress/lzw` with LSB order and 8-bit literals, as memberlist
/// configures it (`lzwLitWidth`): the GIF flavour of LZW (codes widen
/// when the table reaches the current width, no early change; a clear code
/// first, an end code last), which `weezl` decodes.
const LZW_LIT_WIDTH: u8 = 8;

/// Largest decompressed message accepted: memberlist's own limit on a
/// push/pull state (`maxPushStateBytes`, 20 MiB) plus room for headers.
pub(crate) const MAX_DECOMPRESSED: usize = 21 * 1024 * 1024;

/// Decompresses a `compress` body (after its type byte) into the message
/// it wraps, type byte included; returns it and the bytes the body took.
pub(crate) fn decompress(buf: &[u8]) -> Result<(Vec<u8>, usize), Error> {
    let (c, used) = decode_body::<Compress>(buf)?;
    if c.algo != 0 {
        return Err(Error::UnknownCompression(c.algo));
    }
    Ok((lzw_decode(&c.buf)?, used))
}

fn lzw_decode(buf: &[u8]) -> Result<Vec<u8>, Error> {
    let mut dec = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, LZW_LIT_WIDTH);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut input = buf;
    loop {
        let r = dec.decode_bytes(input, &mut chunk);
        input = &input[r.consumed_in..];
        out.extend_from_slice(&chunk[..r.consumed_out]);
        if out.len() > MAX_DECOMPRESSED {
            return Err(Error::TooLarge("decompressed message"));
        }
        match r.status {
            Ok(weezl::LzwStatus::Done) => return Ok(out),
            // Go's reader also accepts input that ends without an end code.
            Ok(weezl::LzwStatus::NoProgress) if input.is_empty() => return Ok(out),
            Ok(weezl::LzwStatus::NoProgress) => return Err(Error::Lzw("no progress".into())),
            Ok(weezl::LzwStatus::Ok) => {}
            Err(e) => return Err(Error::Lzw(e.to_string())),
        }
    }
}

/// Compresses a message (type byte included) into a whole `compress`
/// message, as memberlist's `compressPayload` does.
pub(crate) fn compress(msg: &[u8]) -> Result<Vec<u8>, Error> {
    let buf = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, LZW_LIT_WIDTH)
        .encode(msg)
        .map_err(|e| Error::Lzw(e.to_string()))?;
    Ok(super::message::encode(&Compress { algo: 0, buf }))
}

/// One message of a packet, its envelopes removed: the type and the body
/// after the type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) kind: MessageType,
    pub(crate) body: Vec<u8>,
}

impl Part {
    pub(crate) fn decode<B: Body>(&self) -> Result<B, Error> {
        if self.kind != B::TYPE {
            return Err(Error::Unexpected {
                want: B::TYPE,
                got: self.kind,
            });
        }
        decode_body::<B>(&self.body).map(|(b, _)| b)
    }
}

/// Compound and compress may nest (a compressed compound); memberlist
/// recurses without a bound, Herald stops here.
const MAX_NESTING: usize = 4;

/// A received UDP packet as its messages: the label is checked against
/// ours (memberlist drops a packet whose label differs, an absent label
/// included), the CRC verified, compression and compounds unwrapped.
/// Truncated compound parts are dropped.
pub(crate) fn decode_packet(buf: &[u8], label: &str) -> Result<Vec<Part>, Error> {
    let (got, rest) = strip_label(buf)?;
    if got != label.as_bytes() {
        return Err(Error::LabelMismatch {
            want: label.to_string(),
            got: String::from_utf8_lossy(got).into_owned(),
        });
    }
    let msg = strip_crc(rest)?;
    let mut out = Vec::new();
    unwrap_command(msg, 0, &mut out)?;
    Ok(out)
}

fn unwrap_command(buf: &[u8], depth: usize, out: &mut Vec<Part>) -> Result<(), Error> {
    if depth > MAX_NESTING {
        return Err(Error::TooLarge("message nesting"));
    }
    let (&kind, body) = buf.split_first().ok_or(Error::Truncated)?;
    let kind = MessageType::try_from(kind)?;
    match kind {
        MessageType::Compound => {
            let (parts, _truncated) = split_compound(body)?;
            for p in parts {
                unwrap_command(p, depth + 1, out)?;
            }
        }
        MessageType::Compress => {
            let (inner, _) = decompress(body)?;
            unwrap_command(&inner, depth + 1, out)?;
        }
        _ => out.push(Part {
            kind,
            body: body.to_vec(),
        }),
    }
    Ok(())
}

/// A packet to send: the messages (each type byte first) in a compound
/// when there are several, CRC-wrapped for a peer that speaks protocol 5,
/// the label in front. Herald does not compress what it sends; memberlist
/// reads uncompressed messages whatever its own setting.
pub(crate) fn encode_packet(msgs: &[Vec<u8>], label: &str, crc: bool) -> Result<Vec<u8>, Error> {
    let msg = match msgs {
        [one] => one.clone(),
        many => make_compound(many)?,
    };
    let msg = if crc { add_crc(&msg) } else { msg };
    add_label(label, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::memberlist::message::{encode, Ack, Ping};

    #[test]
    fn label_header_is_type_length_label() {
        assert_eq!(add_label("x", &[1, 2]).unwrap(), [244, 1, b'x', 1, 2]);
        assert_eq!(add_label("", &[1, 2]).unwrap(), [1, 2]);
        assert!(matches!(
            add_label(&"a".repeat(256), &[]),
            Err(Error::LabelTooLong(256))
        ));
        assert_eq!(
            strip_label(&[244, 2, b'a', b'b', 9]).unwrap(),
            (&b"ab"[..], &[9][..])
        );
        assert_eq!(strip_label(&[9]).unwrap(), (&b""[..], &[9][..]));
        assert!(matches!(strip_label(&[244, 0, 9]), Err(Error::EmptyLabel)));
        assert!(matches!(strip_label(&[244, 5, 9]), Err(Error::Truncated)));
        assert!(matches!(strip_label(&[244]), Err(Error::Truncated)));
    }

    /// `hasCrc` (12), then `crc32.ChecksumIEEE` of the message big-endian:
    /// the IEEE CRC of "123456789" is the well-known 0xcbf43926.
    #[test]
    fn crc_wrapper_is_ieee_big_endian() {
        let wrapped = add_crc(b"123456789");
        assert_eq!(wrapped[..5], [12, 0xcb, 0xf4, 0x39, 0x26]);
        assert_eq!(strip_crc(&wrapped).unwrap(), b"123456789");
        let mut bad = wrapped.clone();
        bad[7] ^= 1;
        assert!(matches!(strip_crc(&bad), Err(Error::BadCrc { .. })));
        // Short or unwrapped packets pass as they are.
        assert_eq!(strip_crc(&[12, 0, 0]).unwrap(), [12, 0, 0]);
    }

    /// `makeCompoundMessage`: type 7, count, u16 lengths, parts.
    #[test]
    fn compound_layout_and_truncation() {
        let c = make_compound(&[vec![1, 2, 3], vec![4]]).unwrap();
        assert_eq!(c, [7, 2, 0, 3, 0, 1, 1, 2, 3, 4]);
        let (parts, trunc) = split_compound(&c[1..]).unwrap();
        assert_eq!(parts, [&[1, 2, 3][..], &[4][..]]);
        assert_eq!(trunc, 0);
        let (parts, trunc) = split_compound(&c[1..c.len() - 1]).unwrap();
        assert_eq!(parts, [&[1, 2, 3][..]]);
        assert_eq!(trunc, 1);
        assert!(split_compound(&[3, 0]).is_err());
    }

    /// What Go's `lzw.NewWriter(w, lzw.LSB, 8)` writes for
    /// "TOBEORNOTTOBEORTOBEORNOT" (printed by Go 1.24's compress/lzw): a
    /// clear code (256) first, so byte 0 is 0x00 and the low bit of byte 1
    /// is set, 9-bit codes packed LSB first, the end code (257) last.
    #[test]
    fn lzw_reads_gos_lsb_stream() {
        let go = [
            0x00, 0xa9, 0x3c, 0x11, 0x52, 0xe4, 0x89, 0x14, 0x27, 0x4f, 0xa8, 0x08, 0x24, 0x68,
            0x70, 0x61, 0xc1, 0x83, 0x09, 0x03, 0x02,
        ];
        let msg = b"TOBEORNOTTOBEORTOBEORNOT";
        assert_eq!(lzw_decode(&go).unwrap(), msg);
        // Herald's own compression writes Go's bytes, inside a `compress`
        // message that reads back.
        let c = compress(msg).unwrap();
        let (inner, _) = decode_body::<Compress>(&c[1..]).unwrap();
        assert_eq!(inner.buf, go);
        let (back, used) = decompress(&c[1..]).unwrap();
        assert_eq!((&back[..], used), (&msg[..], c.len() - 1));
    }

    #[test]
    fn packets_unwrap_label_crc_compress_and_compound() {
        let ping = encode(&Ping {
            seq_no: 5,
            node: "h".into(),
            ..Default::default()
        });
        let ack = encode(&Ack {
            seq_no: 6,
            payload: None,
        });
        let compound = make_compound(&[ping.clone(), ack.clone()]).unwrap();
        let compressed = compress(&compound).unwrap();
        let pkt = add_label("x", &add_crc(&compressed)).unwrap();
        let parts = decode_packet(&pkt, "x").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].decode::<Ping>().unwrap().seq_no, 5);
        assert_eq!(parts[1].decode::<Ack>().unwrap().seq_no, 6);
        assert!(matches!(
            parts[0].decode::<Ack>(),
            Err(Error::Unexpected { .. })
        ));
        // Memberlist drops packets of another label, or none.
        assert!(matches!(
            decode_packet(&pkt, ""),
            Err(Error::LabelMismatch { .. })
        ));
        assert!(matches!(
            decode_packet(&ping, "x"),
            Err(Error::LabelMismatch { .. })
        ));
        let sent = encode_packet(&[ping, ack], "", true).unwrap();
        assert_eq!(decode_packet(&sent, "").unwrap().len(), 2);
    }
}
