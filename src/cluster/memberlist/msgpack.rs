//! The slice of MessagePack that memberlist speaks, written the way its
//! codec writes it.
//!
//! Memberlist encodes every message with `codec.MsgpackHandle{}` of
//! hashicorp/go-msgpack (0.5.x in the Alertmanager 0.33.1 Debian builds),
//! whose zero value has `WriteExt: false`. That makes it write the *old*
//! MessagePack spec:
//!
//! - Go strings **and** `[]byte` both go out as "raw" (the str family):
//!   fixstr `0xa0|n` below 32 bytes, then straight to str16 `0xda` and
//!   str32 `0xdb`. It never writes str8 `0xd9` nor the bin family
//!   `0xc4..0xc6`; a general-purpose encoder (rmp writes str8 for 32..255
//!   bytes and bin for bytes) differs byte for byte, which is why this is
//!   written by hand: it is ~200 lines and the tests can pin the exact bytes.
//! - A nil slice is nil `0xc0`; an empty one is `0xa0`.
//! - Integers take the smallest form: 0..=127 a positive fixint, then
//!   uint8/16/32/64 (`0xcc..0xcf`) for non-negative values whatever the Go
//!   type; negative ones a negative fixint or int8..int64.
//! - A struct is a map keyed by the Go field names, **sorted by name**
//!   (go-msgpack keeps its field list sorted for map encoding, not in
//!   declaration order), `omitempty` fields left out and not counted.
//!
//! The reader is more liberal than the writer, as go-msgpack's decoder is:
//! it takes str8 and the bin family as byte strings (memberlist builds on
//! go-msgpack v2 may write them) and any integer form for any integer
//! field, range-checked.

use super::Error;

/// Appends values to a buffer in go-msgpack's choices.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn map_len(&mut self, n: usize) {
        self.container(0x80, 16, 0xde, 0xdf, n);
    }

    pub(crate) fn array_len(&mut self, n: usize) {
        self.container(0x90, 16, 0xdc, 0xdd, n);
    }

    fn container(&mut self, fix: u8, cutoff: usize, b16: u8, b32: u8, n: usize) {
        if n < cutoff {
            // n < 32 here, so it fits the low bits.
            self.buf.push(fix | n as u8);
        } else if let Ok(n) = u16::try_from(n) {
            self.buf.push(b16);
            self.buf.extend_from_slice(&n.to_be_bytes());
        } else {
            self.buf.push(b32);
            // Memberlist's messages are far below 4 GiB (a UDP packet, or a
            // push/pull state capped at 20 MiB); saturate rather than wrap.
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A raw string (Go `string` or `[]byte`, which go-msgpack writes alike).
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.container(0xa0, 32, 0xda, 0xdb, b.len());
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.raw(s.as_bytes());
    }

    /// A Go `[]byte` that may be nil.
    pub(crate) fn bytes_or_nil(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.raw(b),
            None => self.nil(),
        }
    }

    pub(crate) fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    pub(crate) fn uint(&mut self, v: u64) {
        if v <= 0x7f {
            self.buf.push(v as u8);
        } else if let Ok(v) = u8::try_from(v) {
            self.buf.extend_from_slice(&[0xcc, v]);
        } else if let Ok(v) = u16::try_from(v) {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub(crate) fn int(&mut self, v: i64) {
        if let Ok(u) = u64::try_from(v) {
            return self.uint(u);
        }
        if v >= -32 {
            self.buf.push(v as u8);
        } else if let Ok(v) = i8::try_from(v) {
            self.buf.extend_from_slice(&[0xd0, v as u8]);
        } else if let Ok(v) = i16::try_from(v) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&v.to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// A decoded value. Strings and byte strings are one kind, as on the wire.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Nil,
    Bool(bool),
    /// Any integer, widened; `Uint` only for values above `i64::MAX`.
    Int(i64),
    Uint(u64),
    Float(f64),
    Raw(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Ext(i8, Vec<u8>),
}

/// Nesting deeper than this is refused: memberlist's messages are flat
/// maps, and a hostile packet must not recurse the stack away.
const MAX_DEPTH: usize = 16;

/// Reads values from the front of a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize, Error> {
        Ok(usize::from(self.byte()?))
    }
    fn len16(&mut self) -> Result<usize, Error> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }
    fn len32(&mut self) -> Result<usize, Error> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| Error::Truncated)
    }

    /// The next value.
    pub(crate) fn value(&mut self) -> Result<Value, Error> {
        self.value_at(0, true)
    }

    /// Steps over the next value without copying it out.
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        self.value_at(0, false).map(|_| ())
    }

    /// One walk for both reading and skipping: with `keep` false nothing is
    /// copied and the result is `Nil`.
    fn value_at(&mut self, depth: usize, keep: bool) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Msgpack("nested too deeply"));
        }
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => Value::Int(i64::from(b)),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth, keep)?,
            0x90..=0x9f => self.array(usize::from(b & 0x0f), depth, keep)?,
            0xa0..=0xbf => self.raw(usize::from(b & 0x1f), keep)?,
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 | 0xd9 => {
                let n = self.len8()?;
                self.raw(n, keep)?
            }
            0xc5 | 0xda => {
                let n = self.len16()?;
                self.raw(n, keep)?
            }
            0xc6 | 0xdb => {
                let n = self.len32()?;
                self.raw(n, keep)?
            }
            0xc7 => {
                let n = self.len8()?;
                self.ext(n, keep)?
            }
            0xc8 => {
                let n = self.len16()?;
                self.ext(n, keep)?
            }
            0xc9 => {
                let n = self.len32()?;
                self.ext(n, keep)?
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => {
                let v = u64::from_be_bytes(self.be()?);
                i64::try_from(v).map_or(Value::Uint(v), Value::Int)
            }
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.be()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => self.ext(1, keep)?,
            0xd5 => self.ext(2, keep)?,
            0xd6 => self.ext(4, keep)?,
            0xd7 => self.ext(8, keep)?,
            0xd8 => self.ext(16, keep)?,
            0xdc => {
                let n = self.len16()?;
                self.array(n, depth, keep)?
            }
            0xdd => {
                let n = self.len32()?;
                self.array(n, depth, keep)?
            }
            0xde => {
                let n = self.len16()?;
                self.map(n, depth, keep)?
            }
            0xdf => {
                let n = self.len32()?;
                self.map(n, depth, keep)?
            }
            0xe0..=0xff => Value::Int(i64::from(b as i8)),
            0xc1 => return Err(Error::Msgpack("reserved byte 0xc1")),
        })
    }

    fn raw(&mut self, n: usize, keep: bool) -> Result<Value, Error> {
        let b = self.take(n)?;
        Ok(if keep {
            Value::Raw(b.to_vec())
        } else {
            Value::Nil
        })
    }

    fn ext(&mut self, n: usize, keep: bool) -> Result<Value, Error> {
        let tag = self.byte()? as i8;
        let b = self.take(n)?;
        Ok(if keep {
            Value::Ext(tag, b.to_vec())
        } else {
            Value::Nil
        })
    }

    fn array(&mut self, n: usize, depth: usize, keep: bool) -> Result<Value, Error> {
        // Every element takes at least a byte: a length beyond what is left
        // is a truncated (or lying) message, not an allocation to make.
        if n > self.buf.len() - self.pos {
            return Err(Error::Truncated);
        }
        let mut v = Vec::with_capacity(if keep { n } else { 0 });
        for _ in 0..n {
            let e = self.value_at(depth + 1, keep)?;
            if keep {
                v.push(e);
            }
        }
        Ok(if keep { Value::Array(v) } else { Value::Nil })
    }

    fn map(&mut self, n: usize, depth: usize, keep: bool) -> Result<Value, Error> {
        if n > (self.buf.len() - self.pos) / 2 {
            return Err(Error::Truncated);
        }
        let mut v = Vec::with_capacity(if keep { n } else { 0 });
        for _ in 0..n {
            let k = self.value_at(depth + 1, keep)?;
            let e = self.value_at(depth + 1, keep)?;
            if keep {
                v.push((k, e));
            }
        }
        Ok(if keep { Value::Map(v) } else { Value::Nil })
    }
}

/// A decoded struct: its fields by Go name. A missing field reads as Go's
/// zero value and an unknown one is ignored, as go-msgpack does, so a
/// newer memberlist's extra fields do not break decoding.
pub(crate) struct Fields {
    fields: Vec<(Vec<u8>, Value)>,
    what: &'static str,
}

impl Fields {
    pub(crate) fn new(v: Value, what: &'static str) -> Result<Self, Error> {
        let Value::Map(m) = v else {
            return Err(Error::Field(what, "not a map"));
        };
        let fields = m
            .into_iter()
            .map(|(k, v)| match k {
                Value::Raw(k) => Ok((k, v)),
                _ => Err(Error::Field(what, "a field name is not a string")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Fields { fields, what })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v)
    }

    fn int(&self, name: &'static str) -> Result<i128, Error> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(0),
            Some(Value::Int(i)) => Ok(i128::from(*i)),
            Some(Value::Uint(u)) => Ok(i128::from(*u)),
            Some(_) => Err(Error::Field(self.what, name)),
        }
    }

    /// An integer field of a Go type `T`; out of range is an error.
    pub(crate) fn num<T: TryFrom<i128>>(&self, name: &'static str) -> Result<T, Error> {
        T::try_from(self.int(name)?).map_err(|_| Error::Field(self.what, name))
    }

    pub(crate) fn bool(&self, name: &'static str) -> Result<bool, Error> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            // go-msgpack takes 0 and 1 for a bool.
            Some(Value::Int(0)) => Ok(false),
            Some(Value::Int(1)) => Ok(true),
            Some(_) => Err(Error::Field(self.what, name)),
        }
    }

    /// A `[]byte` field; nil and missing read as empty.
    pub(crate) fn bytes(&self, name: &'static str) -> Result<Vec<u8>, Error> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(Vec::new()),
            Some(Value::Raw(b)) => Ok(b.clone()),
            Some(_) => Err(Error::Field(self.what, name)),
        }
    }

    /// A `string` field. Go strings need not be UTF-8; one that is not is
    /// refused rather than altered, since node names are compared exactly.
    pub(crate) fn string(&self, name: &'static str) -> Result<String, Error> {
        String::from_utf8(self.bytes(name)?).map_err(|_| Error::Field(self.what, name))
    }
}

/// The length of the complete value at the front of `buf`, or `None` when
/// `buf` ends before it does: a stream reader reads until a value is whole.
pub(crate) fn complete_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    let mut r = Reader::new(buf);
    match r.skip() {
        Ok(()) => Ok(Some(r.position())),
        Err(Error::Truncated) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(b: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(b);
        w.buf
    }

    /// go-msgpack's `writeContainerLen` for raw strings without
    /// `WriteExt`: fixstr below 32, then str16 (no str8), then str32.
    #[test]
    fn raw_strings_skip_str8() {
        assert_eq!(raw(b""), [0xa0]);
        assert_eq!(raw(b"abc"), [0xa3, b'a', b'b', b'c']);
        assert_eq!(raw(&[7; 31])[0], 0xbf);
        assert_eq!(raw(&[7; 32])[..3], [0xda, 0x00, 0x20]);
        assert_eq!(raw(&[7; 255])[..3], [0xda, 0x00, 0xff]);
        assert_eq!(raw(&vec![7; 70_000])[..5], [0xdb, 0x00, 0x01, 0x11, 0x70]);
    }

    /// `encodeUint`/`encodeInt`: the smallest form, unsigned forms for
    /// every non-negative value.
    #[test]
    fn integers_take_the_smallest_form() {
        let enc = |v: i64| {
            let mut w = Writer::default();
            w.int(v);
            w.buf
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0xcc, 0x80]);
        assert_eq!(enc(256), [0xcd, 0x01, 0x00]);
        assert_eq!(enc(65_536), [0xce, 0, 1, 0, 0]);
        assert_eq!(enc(1 << 32), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(-1), [0xff]);
        assert_eq!(enc(-32), [0xe0]);
        assert_eq!(enc(-33), [0xd0, 0xdf]);
        assert_eq!(enc(-129), [0xd1, 0xff, 0x7f]);
        for v in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            -1,
            -32,
            -33,
            -200,
            i64::MIN,
        ] {
            assert_eq!(Reader::new(&enc(v)).value().unwrap(), Value::Int(v));
        }
    }

    #[test]
    fn maps_and_arrays_switch_to_16_bit_lengths_at_16() {
        let mut w = Writer::default();
        w.map_len(15);
        w.map_len(16);
        w.array_len(3);
        w.array_len(70_000);
        assert_eq!(
            w.buf,
            [0x8f, 0xde, 0x00, 0x10, 0x93, 0xdd, 0x00, 0x01, 0x11, 0x70]
        );
    }

    /// What a go-msgpack v2 writer (WriteExt on) would send reads the same.
    #[test]
    fn reader_takes_str8_and_bin() {
        for bytes in [
            &[0xd9, 0x02, b'h', b'i'][..],
            &[0xc4, 0x02, b'h', b'i'],
            &[0xc5, 0x00, 0x02, b'h', b'i'],
            &[0xa2, b'h', b'i'],
        ] {
            assert_eq!(
                Reader::new(bytes).value().unwrap(),
                Value::Raw(b"hi".to_vec())
            );
        }
    }

    #[test]
    fn truncation_is_reported_as_incomplete() {
        let mut w = Writer::default();
        w.map_len(1);
        w.str("Node");
        w.str("a-node-name");
        let full = w.buf;
        assert_eq!(complete_len(&full).unwrap(), Some(full.len()));
        for cut in 0..full.len() {
            assert_eq!(complete_len(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        // A length claiming more elements than bytes left is not allocated.
        assert_eq!(complete_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap(), None);
        assert!(matches!(
            Reader::new(&[0xc1]).value(),
            Err(Error::Msgpack(_))
        ));
        let deep = vec![0x91; 100];
        assert!(Reader::new(&deep).value().is_err());
    }

    #[test]
    fn fields_read_go_zero_values_and_check_ranges() {
        let mut w = Writer::default();
        w.map_len(3);
        w.str("Port");
        w.uint(70_000);
        w.str("Extra");
        w.bool(true);
        w.str("Node");
        w.nil();
        let f = Fields::new(Reader::new(&w.buf).value().unwrap(), "t").unwrap();
        assert!(f.num::<u16>("Port").is_err());
        assert_eq!(f.num::<u32>("Port").unwrap(), 70_000);
        assert_eq!(f.string("Node").unwrap(), "");
        assert_eq!(f.num::<u32>("Missing").unwrap(), 0);
        assert!(!f.bool("Missing").unwrap());
    }
}
