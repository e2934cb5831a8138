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

// Herald's own stored JSON (alert rows, history records): read back by
// Herald, so a string needs no Go escaping when it has nothing JSON must
// escape.

/// Whether no byte of `s` needs escaping in JSON, eight bytes at a time.
pub(crate) fn plain_json(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact as to whether some byte is zero, or below 0x20.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let has_control = |v: u64| v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let w = u64::from_le_bytes(word);
        if has_control(w)
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// A JSON string: one with nothing JSON must escape (no control
/// character, quote or backslash; label strings almost never have one) is
/// copied as it is, the others are escaped as Go does. Either reads back
/// the same; Go's escaping, byte by byte, was two thirds of writing a row.
pub(crate) fn write_plain_str(out: &mut Vec<u8>, s: &str) {
    if plain_json(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_str(out, s);
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

/// Whether any of the eight bytes of `w` is one [`NEEDS_ESCAPE`] holds, or
/// is not ASCII (the byte loop then looks for U+2028/2029): a byte below
/// 0x20, or equal to one of `"\\<>&`. Never false for such a word (the
/// zero-byte test below has no false negatives); a true for a plain word
/// only costs the byte loop.
fn needs_look(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    w & HIGH != 0
        // With every byte ASCII, a byte below 0x20 borrows into its high bit.
        || w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
        || has_zero(w ^ (ONES * u64::from(b'"')))
        || has_zero(w ^ (ONES * u64::from(b'\\')))
        || has_zero(w ^ (ONES * u64::from(b'<')))
        || has_zero(w ^ (ONES * u64::from(b'>')))
        || has_zero(w ^ (ONES * u64::from(b'&')))
}

/// Writes `s` as a JSON string exactly as Go's encoder would. The hot path
/// of large API answers: unescaped runs are copied in one go.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        // Eight bytes at a time while none of them needs a look: label
        // values are mostly plain ASCII, and this loop was a third of a
        // large GET's profile.
        if let Some(w) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if !needs_look(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
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
    /// The byte loop alone, as `write_str` was before it skipped words.
    fn plain(out: &mut Vec<u8>, s: &str) {
        let b = s.as_bytes();
        out.push(b'"');
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == 0xE2 && i + 2 < b.len() && b[i + 1] == 0x80 && (b[i + 2] | 1) == 0xA9 {
                out.extend_from_slice(if b[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'<' | b'>' | b'&' | 0x00..=0x1f => {
                    out.extend_from_slice(format!("\\u{:04x}", c).as_bytes())
                }
                _ => out.push(c),
            }
            i += 1;
        }
        out.push(b'"');
    }

    #[test]
    fn write_str_equals_the_byte_loop_on_random_strings() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        // Mostly plain text, with every byte that needs escaping, its
        // neighbours, and multi-byte characters around U+2028.
        let pieces = [
            "a",
            "Z",
            "0",
            " ",
            "!",
            "#",
            "%",
            "'",
            ";",
            "=",
            "?",
            "[",
            "]",
            "~",
            "\u{7f}",
            "\"",
            "\\",
            "<",
            ">",
            "&",
            "\n",
            "\r",
            "\t",
            "\u{0}",
            "\u{1f}",
            "\u{8}",
            "\u{2027}",
            "\u{2028}",
            "\u{2029}",
            "\u{202a}",
            "é",
            "€",
            "✓",
            "host-12.example.com:9100",
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let s: String = (0..len)
                .map(|_| {
                    if next().is_multiple_of(4) {
                        pieces[(next() % pieces.len() as u64) as usize]
                    } else {
                        "abcdefgh"
                    }
                })
                .collect();
            let (mut fast, mut want) = (Vec::new(), Vec::new());
            super::write_str(&mut fast, &s);
            plain(&mut want, &s);
            assert_eq!(fast, want, "{s:?}");
        }
    }

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
