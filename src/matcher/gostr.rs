//! Go's `strconv.Unquote` for double-quoted literals: the UTF-8 matcher
//! parser decodes quoted names and values with it, so which escapes are
//! accepted (and which are errors) must be Go's. Quoting the other way is
//! `crate::model::gostr::go_quote`, shared with label-set rendering.

/// Decodes a Go double-quoted string literal, quotes included. `None` where
/// Go answers `ErrSyntax`. The result may hold bytes that are not UTF-8
/// (`\xff`, octal escapes); the caller decides what that means.
pub(crate) fn unquote(lit: &str) -> Option<Vec<u8>> {
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    // Go refuses a raw newline inside a double-quoted literal.
    if body.contains('\n') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => unquote_escape(&mut chars, &mut out)?,
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Some(out)
}

/// One escape after a backslash (`strconv.UnquoteChar` with quote `"`).
fn unquote_escape(chars: &mut std::str::Chars<'_>, out: &mut Vec<u8>) -> Option<()> {
    let simple = |b: u8, out: &mut Vec<u8>| {
        out.push(b);
        Some(())
    };
    match chars.next()? {
        'a' => simple(0x07, out),
        'b' => simple(0x08, out),
        'f' => simple(0x0c, out),
        'n' => simple(b'\n', out),
        'r' => simple(b'\r', out),
        't' => simple(b'\t', out),
        'v' => simple(0x0b, out),
        '\\' => simple(b'\\', out),
        '"' => simple(b'"', out),
        'x' => {
            let v = hex_digits(chars, 2)?;
            simple(v as u8, out)
        }
        c @ '0'..='7' => {
            let mut v = c.to_digit(8)?;
            for _ in 0..2 {
                v = v * 8 + chars.next()?.to_digit(8)?;
            }
            if v > 255 {
                return None;
            }
            simple(v as u8, out)
        }
        u @ ('u' | 'U') => {
            let v = hex_digits(chars, if u == 'u' { 4 } else { 8 })?;
            // Surrogates and values past U+10FFFF are not valid runes.
            let c = char::from_u32(v)?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            Some(())
        }
        _ => None,
    }
}

fn hex_digits(chars: &mut std::str::Chars<'_>, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..n {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uq(s: &str) -> Option<String> {
        unquote(s).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn unquotes_like_go() {
        assert_eq!(uq(r#""a b""#).as_deref(), Some("a b"));
        assert_eq!(uq(r#""\t\n\\\"""#).as_deref(), Some("\t\n\\\""));
        assert_eq!(
            uq(r#""\u00e9\x41\101\U0001F600""#).as_deref(),
            Some("éAA😀")
        );
        assert_eq!(uq(r#""föö""#).as_deref(), Some("föö"));
        assert_eq!(unquote(r#""\xff""#), Some(vec![0xff]));
        for bad in [
            r#""\q""#,
            r#""\'""#,
            r#""\x4""#,
            r#""\400""#,
            r#""\ud800""#,
            r#""\U00110000""#,
            "\"a\nb\"",
            r#""a"b""#,
            r#""a"#,
            r#""\""#,
        ] {
            assert_eq!(unquote(bad), None, "{bad}");
        }
    }
}
