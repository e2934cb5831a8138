//! JSON written the way Go's `encoding/json` writes it, for payloads and API
//! answers that clients compare byte for byte: `<`, `>`, `&`, U+2028 and
//! U+2029 are escaped as `\u003c`..., and control characters other than
//! `\n`, `\r`, `\t` as `\u00XX`.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        esc: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match esc {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::AsciiControl(b) => return write!(w, "\\u{:04x}", b),
            _ => b"",
        };
        w.write_all(s)
    }
}

/// Serialises like Go's `json.Marshal`.
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, v);
    out
}

/// Serialises into an existing buffer. Writing to a `Vec` cannot fail, and
/// the types Herald serialises have no fallible `Serialize` impls.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    if let Err(e) = v.serialize(&mut ser) {
        tracing::error!(err = %e, "JSON serialisation failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_like_go() {
        let s = String::from_utf8(super::to_vec("<a href=\"x\">&\u{8}\u{1}\n\u{2028}")).unwrap();
        assert_eq!(s, r#""\u003ca href=\"x\"\u003e\u0026\u0008\u0001\n\u2028""#);
    }
}

/// Bytes that need escaping in Go's JSON strings (or may start U+2028/2029).
const fn escape_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
}

static NEEDS_ESCAPE: [bool; 256] = escape_table();

/// Writes `s` as a JSON string exactly as Go's encoder would. The hot path
/// of large API answers: unescaped runs are copied in one go.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !NEEDS_ESCAPE[c as usize] {
            i += 1;
            continue;
        }
        if c == 0xE2 {
            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
            if i + 2 < b.len() && b[i + 1] == 0x80 && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice(if b[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                start = i;
            } else {
                i += 1;
            }
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod fast_tests {
    #[test]
    fn write_str_equals_formatter() {
        for s in [
            "plain",
            "<a href=\"x\">&",
            "\u{8}\u{1}\n\t\r\u{2028}\u{2029}",
            "é€\u{2027}✓",
            "\\",
            "",
        ] {
            let mut fast = Vec::new();
            super::write_str(&mut fast, s);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(super::to_vec(s)).unwrap(),
                "{s:?}"
            );
        }
    }
}
