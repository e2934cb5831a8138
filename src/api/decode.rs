//! Request bodies read as Alertmanager's go-swagger server reads them with
//! Go's `encoding/json`, so that a client whose input Alertmanager takes is
//! not refused by Herald:
//!
//! * a byte that is not UTF-8 inside a string becomes U+FFFD (one per byte,
//!   as `utf8.DecodeRune` consumes them), and so does an escaped surrogate
//!   that is not half of a pair (`\ud800`);
//! * only the first JSON value is read (`json.Decoder.Decode`): what follows
//!   it is never looked at;
//! * object keys match field names exactly first, then case-insensitively
//!   (`Labels` is `labels`), and a repeated key wins over the earlier one;
//!   a repeated object (`labels` twice) is merged into the first, as Go
//!   decodes into the map it already has;
//! * `null` leaves a string as it was, clears a map or pointer, and is an
//!   empty string as a map value;
//! * nesting deeper than 10,000 arrays or objects is refused, as Go's
//!   scanner refuses it.
//!
//! Syntax errors and values of the wrong type are answered as go-swagger
//! answers them: 400 `{"code":400,"message":"parsing alerts body from \"\"
//! failed, because ..."}`; an empty body is 422 "... in body is required".

// Errors here are the answer itself, built at most once per request.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// go-swagger's error answer (`errors.ServeError`): an object with the
/// code and message, and no trailing newline.
pub(crate) fn swagger_error(status: StatusCode, code: u32, message: String) -> Response {
    #[derive(serde::Serialize)]
    struct Body {
        code: u32,
        message: String,
    }
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::gojson::to_vec(&Body { code, message }),
    )
        .into_response()
}

/// The first JSON value of a request body, ready for [`parse`]; the
/// answer go-swagger gives when there is none or it nests too deep.
/// `what` names the body in go-swagger's messages ("alerts", "silence").
pub(crate) fn first_value<'a>(body: &'a [u8], what: &str) -> Result<Cow<'a, [u8]>, Response> {
    match prepare(body) {
        Ok(Prepared::Value(v)) => Ok(v),
        Ok(Prepared::Empty) => Err(swagger_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            602,
            format!("{what} in body is required"),
        )),
        Err(TooDeep) => Err(parse_error(what, "exceeded max depth")),
    }
}

/// Reads `T` from what [`first_value`] returned; what follows the value is
/// not looked at, as `json.Decoder.Decode` does not.
pub(crate) fn parse<'b, T: Deserialize<'b>>(value: &'b [u8], what: &str) -> Result<T, Response> {
    // Checked once whole, serde does not check each string again (that was
    // a fifth of its time on alert batches); both read the same.
    let read = match std::str::from_utf8(value) {
        Ok(text) => T::deserialize(&mut serde_json::Deserializer::from_str(text)),
        Err(_) => T::deserialize(&mut serde_json::Deserializer::from_slice(value)),
    };
    read.map_err(|e| {
        let msg = if e.is_eof() {
            "unexpected EOF".to_string()
        } else {
            // Go's messages carry no position.
            let s = e.to_string();
            match s.rfind(" at line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        };
        parse_error(what, &msg)
    })
}

fn parse_error(what: &str, why: &str) -> Response {
    swagger_error(
        StatusCode::BAD_REQUEST,
        400,
        format!("parsing {what} body from \"\" failed, because {why}"),
    )
}

/// The body of a POST, read as go-swagger reads it: a body that is not
/// `application/json` is 415 (parameters such as `charset` are ignored, a
/// missing type is `application/octet-stream`), and, Herald's own, one
/// larger than `--web.max-request-body-bytes` is 413 before it is read.
pub(crate) async fn read_body(req: Request, max_bytes: usize) -> Result<Bytes, Response> {
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let has_body = length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let media = if media.is_empty() {
            "application/octet-stream".to_string()
        } else {
            media
        };
        if media != "application/json" {
            return Err(swagger_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                format!("unsupported media type {media:?}, only [application/json] are allowed"),
            ));
        }
    }
    let too_large = || {
        swagger_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            format!("request body is larger than --web.max-request-body-bytes={max_bytes} bytes"),
        )
    };
    if max_bytes > 0 && length.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    let mut stream = req.into_body().into_data_stream();
    let mut out = Vec::with_capacity(length.unwrap_or(0).min(1 << 20) as usize);
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| {
            swagger_error(
                StatusCode::BAD_REQUEST,
                400,
                format!("reading request body: {e}"),
            )
        })?;
        if max_bytes > 0 && out.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// What [`prepare`] makes of a body before serde reads it.
#[derive(Debug, PartialEq)]
pub(crate) enum Prepared<'a> {
    /// Nothing but white space: go-swagger's "required".
    Empty,
    /// The first value, with invalid text replaced.
    Value(Cow<'a, [u8]>),
}

/// Go's "exceeded max depth".
#[derive(Debug, PartialEq)]
pub(crate) struct TooDeep;

/// Finds the first JSON value of `body` and replaces in its strings what
/// Go's decoder replaces; copies only when there is something to replace.
/// Syntax is left for serde to check: outside strings nothing is changed.
pub(crate) fn prepare(body: &[u8]) -> Result<Prepared<'_>, TooDeep> {
    scan(body, std::str::from_utf8(body).is_ok())
}

/// [`prepare`]; `utf8`: the whole body is valid UTF-8, so nothing in a
/// string but an escape or its end needs a look, and a string's plain run
/// is skipped with a vector search (this scan was 12% of the POST path byte
/// by byte; a word-at-a-time loop took a quarter more than `memchr`).
fn scan(body: &[u8], utf8: bool) -> Result<Prepared<'_>, TooDeep> {
    let start = match body
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Some(i) => i,
        None => return Ok(Prepared::Empty),
    };
    let mut out: Option<Vec<u8>> = None;
    // Bytes before this index are in `out` (once there is one).
    let mut flushed = 0;
    let replace = |out: &mut Option<Vec<u8>>, flushed: &mut usize, at, len, with: &[u8]| {
        let o = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 16));
        o.extend_from_slice(&body[*flushed..at]);
        o.extend_from_slice(with);
        *flushed = at + len;
    };
    let mut depth = 0usize;
    let mut end = body.len();
    let mut i = start;
    let mut in_string = false;
    while i < body.len() {
        let b = body[i];
        if !in_string {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(TooDeep);
                    }
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        let b = if utf8 {
            match memchr::memchr2(b'"', b'\\', &body[i..]) {
                Some(n) => {
                    i += n;
                    body[i]
                }
                // An unterminated string: nothing left to replace.
                None => break,
            }
        } else {
            b
        };
        match b {
            b'"' => {
                in_string = false;
                i += 1;
            }
            b'\\' => match body.get(i + 1) {
                Some(b'u') => match hex4(&body[i + 2..]) {
                    Some(hi @ 0xD800..=0xDBFF)
                        if body.get(i + 6) == Some(&b'\\')
                            && body.get(i + 7) == Some(&b'u')
                            && matches!(
                                hex4(&body[(i + 8).min(body.len())..]),
                                Some(0xDC00..=0xDFFF)
                            ) =>
                    {
                        let _ = hi;
                        i += 12;
                    }
                    Some(0xD800..=0xDFFF) => {
                        replace(&mut out, &mut flushed, i, 6, b"\\ufffd");
                        i += 6;
                    }
                    _ => i += 2,
                },
                // Not JSON (serde refuses the escape), but what the
                // byte-by-byte scan makes of the rest of that character
                // is what serde must see.
                Some(&c) if utf8 && c >= 0x80 => return scan(body, false),
                Some(_) => i += 2,
                None => i += 1,
            },
            0x00..=0x7F => i += 1,
            _ => match utf8_len(&body[i..]) {
                Some(n) => i += n,
                None => {
                    replace(&mut out, &mut flushed, i, 1, "\u{FFFD}".as_bytes());
                    i += 1;
                }
            },
        }
    }
    let end = end.min(body.len());
    Ok(Prepared::Value(match out {
        Some(mut o) => {
            o.extend_from_slice(&body[flushed.min(end)..end]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(&body[..end]),
    }))
}

fn hex4(s: &[u8]) -> Option<u32> {
    let h = s.get(..4)?;
    let mut v = 0;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// The length of the valid UTF-8 sequence at the start of `s` (which starts
/// with a non-ASCII byte), by `utf8.DecodeRune`'s rules; `None` when the
/// first byte is not the start of one.
fn utf8_len(s: &[u8]) -> Option<usize> {
    let (n, lo, hi) = match s[0] {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return None,
    };
    let seq = s.get(..n)?;
    ((lo..=hi).contains(&seq[1]) && seq[2..].iter().all(|b| (0x80..=0xBF).contains(b))).then_some(n)
}

/// Which of `names` a JSON key sets: the exact name first, then one equal
/// under Go's case folding (`bytes.EqualFold`; of the non-ASCII letters
/// only the Kelvin sign and the long s fold onto ASCII ones).
pub(crate) fn field(key: &str, names: &[&str]) -> Option<usize> {
    names.iter().position(|n| *n == key).or_else(|| {
        let fold = |c: char| match c {
            '\u{212A}' => 'k',
            '\u{17F}' => 's',
            c => c.to_ascii_lowercase(),
        };
        names
            .iter()
            .position(|n| n.chars().map(fold).eq(key.chars().map(fold)))
    })
}

/// How Go names a JSON value's type in "cannot unmarshal X into ...".
fn unexpected_kind(u: &de::Unexpected<'_>) -> &'static str {
    use de::Unexpected::*;
    match u {
        Bool(_) => "bool",
        Unsigned(_) | Signed(_) | Float(_) => "number",
        Str(_) | Char(_) | Bytes(_) => "string",
        Seq => "array",
        Map => "object",
        _ => "value",
    }
}

/// Go's type error, for `into` ("Go value of type string", "Go struct field
/// Alert.labels of type models.LabelSet").
pub(crate) fn type_error<E: de::Error>(got: de::Unexpected<'_>, into: &str) -> E {
    E::custom(format!(
        "json: cannot unmarshal {} into {into}",
        unexpected_kind(&got)
    ))
}

/// A JSON string, or `null` (which Go leaves the field unchanged for, or
/// clears a pointer with).
pub(crate) enum GoStr<'a> {
    Null,
    Str(Cow<'a, str>),
}

/// Seed for a [`GoStr`] whose type errors name `into`.
pub(crate) struct StrSeed<'i>(pub(crate) &'i str);

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = GoStr<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(StrVisitor(Target::Named(self.0)))
    }
}

/// What a string was to be read into, for Go's type error. A label value
/// names its struct field and key ("Go struct field Alert.labels.job of
/// type string"); that message is only built when there is an error, not
/// for every value of every alert.
#[derive(Clone, Copy)]
enum Target<'i> {
    Named(&'i str),
    LabelValue { path: &'i str, key: &'i str },
}

impl Target<'_> {
    fn error<E: de::Error>(self, got: de::Unexpected<'_>) -> E {
        match self {
            Target::Named(into) => type_error(got, into),
            Target::LabelValue { path, key } => {
                type_error(got, &format!("Go struct field {path}.{key} of type string"))
            }
        }
    }
}

struct StrVisitor<'i>(Target<'i>);

impl<'de> Visitor<'de> for StrVisitor<'_> {
    type Value = GoStr<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(GoStr::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(GoStr::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(GoStr::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(GoStr::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Err(self.0.error(de::Unexpected::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(self.0.error(de::Unexpected::Signed(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(self.0.error(de::Unexpected::Unsigned(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(self.0.error(de::Unexpected::Float(v)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.0.error(de::Unexpected::Seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.0.error(de::Unexpected::Map))
    }
}

/// Seed for a label value: a [`StrSeed`] whose message is made on error.
struct LabelValueSeed<'i> {
    path: &'i str,
    key: &'i str,
}

impl<'de> DeserializeSeed<'de> for LabelValueSeed<'_> {
    type Value = GoStr<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(StrVisitor(Target::LabelValue {
            path: self.path,
            key: self.key,
        }))
    }
}

/// A JSON boolean, or `null`.
pub(crate) struct BoolSeed<'i>(pub(crate) &'i str);

impl<'de> DeserializeSeed<'de> for BoolSeed<'_> {
    type Value = Option<bool>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'i>(&'i str);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Option<bool>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(type_error(de::Unexpected::Str(v), self.0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(type_error(de::Unexpected::Signed(v), self.0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(type_error(de::Unexpected::Unsigned(v), self.0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(type_error(de::Unexpected::Float(v), self.0))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(type_error(de::Unexpected::Seq, self.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(type_error(de::Unexpected::Map, self.0))
            }
        }
        d.deserialize_any(V(self.0))
    }
}

/// The pairs of a JSON object of strings (`models.LabelSet`), in the order
/// received; `None` for `null`. A `null` value is Go's empty string.
pub(crate) type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Seed for a label set at `path` ("Alert.labels"), for Go's messages.
pub(crate) struct PairsSeed<'i>(pub(crate) &'i str);

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = Option<Pairs<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'i>(&'i str);
        impl V<'_> {
            fn wrong<E: de::Error>(&self, u: de::Unexpected<'_>) -> E {
                type_error(
                    u,
                    &format!("Go struct field {} of type models.LabelSet", self.0),
                )
            }
        }
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Option<Pairs<'de>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(12));
                while let Some(k) = m.next_key_seed(StrSeed("Go value of type string"))? {
                    // JSON keys are strings: `Null` cannot come.
                    let k = match k {
                        GoStr::Str(k) => k,
                        GoStr::Null => Cow::Borrowed(""),
                    };
                    let val = match m.next_value_seed(LabelValueSeed {
                        path: self.0,
                        key: &k,
                    })? {
                        GoStr::Str(s) => s,
                        GoStr::Null => Cow::Borrowed(""),
                    };
                    v.push((k, val));
                }
                Ok(Some(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Err(self.wrong(de::Unexpected::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(self.wrong(de::Unexpected::Signed(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(self.wrong(de::Unexpected::Unsigned(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(self.wrong(de::Unexpected::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(self.wrong(de::Unexpected::Str(v)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(self.wrong(de::Unexpected::Seq))
            }
        }
        d.deserialize_any(V(self.0))
    }
}

/// Go decodes a repeated map into the map it already has.
pub(crate) fn merge<'a>(into: &mut Option<Pairs<'a>>, got: Option<Pairs<'a>>) {
    match (into.as_mut(), got) {
        (_, None) => *into = None,
        (Some(have), Some(more)) => have.extend(more),
        (None, Some(more)) => *into = Some(more),
    }
}

/// `strfmt.ParseDateTime`: RFC 3339 with or without the colon in the
/// offset, and the ISO 8601 forms without a zone (read as UTC) or without
/// seconds. `None` when it is none of them.
pub(crate) fn parse_datetime(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    // "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05" and
    // "2006-01-02T15:04Z": Go parses a layout without a zone as UTC.
    let local = s.strip_suffix('Z').unwrap_or(s);
    if local.len() < 16 || !matches!(local.as_bytes()[10], b'T' | b' ') {
        return None;
    }
    if s.ends_with('Z') && local.len() != 16 {
        return None;
    }
    let dt = local.parse::<jiff::civil::DateTime>().ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok()
}

/// Go's message for a date-time strfmt cannot read.
pub(crate) fn datetime_error(s: &str) -> String {
    format!("parsing time {s:?}: not an ISO 8601 date-time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(b: &[u8]) -> Vec<u8> {
        match prepare(b).unwrap() {
            Prepared::Value(v) => v.into_owned(),
            Prepared::Empty => panic!("empty"),
        }
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        // e2 82 is a truncated three-byte sequence: Go replaces each byte.
        let got = prepared(b"[\"x\xe2\x82y\xc0\xafz\xff\"]");
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "[\"x\u{FFFD}\u{FFFD}y\u{FFFD}\u{FFFD}z\u{FFFD}\"]"
        );
        // Encoded surrogates are not UTF-8 either.
        assert_eq!(
            String::from_utf8(prepared(b"\"\xed\xa0\x80\"")).unwrap(),
            "\"\u{FFFD}\u{FFFD}\u{FFFD}\""
        );
    }

    /// The skipping scan against the byte-by-byte one, on valid UTF-8
    /// bodies built from what the scan looks at: quotes, escapes (lone and
    /// paired surrogates, an escaped quote), brackets, multi-byte text and
    /// unterminated strings and values.
    #[test]
    fn skipping_scan_equals_bytewise_scan() {
        const PIECES: [&str; 16] = [
            "\"",
            "\\",
            "\\\"",
            "\\u",
            "\\ud800",
            "\\udc00",
            "\\ud83d\\ude00",
            "[",
            "]",
            "{",
            "}",
            "é",
            "😀",
            "abc",
            " ",
            ":",
        ];
        let mut next = crate::testing::xorshift(0x5eed_dec0);
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let body: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let fast = scan(body.as_bytes(), true);
            let plain = scan(body.as_bytes(), false);
            assert_eq!(fast, plain, "{body:?}");
            assert_eq!(prepare(body.as_bytes()), plain, "{body:?}");
        }
    }

    #[test]
    fn valid_text_is_borrowed_not_copied() {
        let body = "[{\"a\":\"é€😀\\ud83d\\ude00\"}]".as_bytes();
        assert!(matches!(prepare(body), Ok(Prepared::Value(Cow::Borrowed(b))) if b == body));
    }

    #[test]
    fn lone_surrogate_escapes_become_replacement_escapes() {
        let got = prepared(br#"["\ud800", "\udc00x", "\ud800\u0041", "\ud800\ud83d\ude00"]"#);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            r#"["\ufffd", "\ufffdx", "\ufffd\u0041", "\ufffd\ud83d\ude00"]"#
        );
    }

    #[test]
    fn only_the_first_value_is_kept() {
        assert_eq!(prepared(b" [1] garbage \xff"), b" [1]");
        assert_eq!(prepared(b"{\"a\":\"}\"} {}"), b"{\"a\":\"}\"}");
        assert_eq!(prepare(b" \r\n\t"), Ok(Prepared::Empty));
        assert_eq!(prepare(b""), Ok(Prepared::Empty));
    }

    #[test]
    fn nesting_is_limited_as_go_limits_it() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(prepare(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(prepare(deep.as_bytes()), Err(TooDeep));
    }

    #[test]
    fn fields_match_exactly_then_case_insensitively() {
        let names = ["labels", "startsAt"];
        assert_eq!(field("labels", &names), Some(0));
        assert_eq!(field("LABELS", &names), Some(0));
        assert_eq!(field("startsat", &names), Some(1));
        assert_eq!(field("\u{17F}tart\u{17F}At", &names), Some(1));
        assert_eq!(field("label", &names), None);
    }

    #[test]
    fn datetimes_strfmt_reads() {
        let utc = |s: &str| parse_datetime(s).map(|t| t.to_string());
        assert_eq!(
            utc("2026-12-01T21:00:00Z").as_deref(),
            Some("2026-12-01T21:00:00Z")
        );
        assert_eq!(
            utc("2026-12-01T21:00:00").as_deref(),
            Some("2026-12-01T21:00:00Z")
        );
        assert_eq!(
            utc("2026-12-01T21:00").as_deref(),
            Some("2026-12-01T21:00:00Z")
        );
        assert_eq!(
            utc("2026-12-01T21:00Z").as_deref(),
            Some("2026-12-01T21:00:00Z")
        );
        assert_eq!(
            utc("2026-12-01 21:00:00").as_deref(),
            Some("2026-12-01T21:00:00Z")
        );
        assert_eq!(utc("yesterday"), None);
        assert_eq!(utc("2026-12-01"), None);
    }
}
