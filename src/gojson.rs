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
