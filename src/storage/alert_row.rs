//! An alert-log row read straight into an [`Alert`] whose strings come
//! from the interner.
//!
//! Loading a million rows through `StoredAlert` allocated every label
//! name and value once for the row and again when the store re-interned
//! them, and copied each body out of SQLite first: a profile of a restart
//! spent a third of its time in malloc and free. Here the body is borrowed
//! from the row and each string is looked up in the interner as it is
//! read, so a string shared by many alerts is never allocated again.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::model::{Alert, Interner, LabelSet};

/// Reads one row body (the JSON `StoredAlert` writes) into an alert.
pub(super) fn read(body: &str, interner: &Interner) -> Result<Alert, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(body);
    let a = Row(interner).deserialize(&mut de)?;
    de.end()?;
    Ok(a)
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Labels,
    Annotations,
    StartsAt,
    EndsAt,
    GeneratorUrl,
    UpdatedAt,
    Timeout,
    #[serde(other)]
    Other,
}

struct Row<'i>(&'i Interner);

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = Alert;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Alert, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = Alert;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored alert")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Alert, A::Error> {
        let mut labels = None;
        let mut annotations = None;
        let (mut starts_at, mut ends_at, mut updated_at) = (None, None, None);
        let mut generator_url = None;
        let mut timeout = None;
        while let Some(k) = m.next_key::<Field>()? {
            match k {
                Field::Labels => labels = Some(m.next_value_seed(Labels(self.0))?),
                Field::Annotations => annotations = Some(m.next_value_seed(Labels(self.0))?),
                Field::StartsAt => starts_at = Some(m.next_value::<Timestamp>()?),
                Field::EndsAt => ends_at = Some(m.next_value::<Timestamp>()?),
                Field::UpdatedAt => updated_at = Some(m.next_value::<Timestamp>()?),
                Field::GeneratorUrl => generator_url = Some(m.next_value_seed(Str(self.0))?),
                Field::Timeout => timeout = Some(m.next_value::<bool>()?),
                Field::Other => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        let labels: LabelSet = labels.ok_or_else(|| A::Error::missing_field("labels"))?;
        Ok(Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: annotations.ok_or_else(|| A::Error::missing_field("annotations"))?,
            starts_at: starts_at.ok_or_else(|| A::Error::missing_field("starts_at"))?,
            ends_at: ends_at.ok_or_else(|| A::Error::missing_field("ends_at"))?,
            generator_url: generator_url.ok_or_else(|| A::Error::missing_field("generator_url"))?,
            updated_at: updated_at.ok_or_else(|| A::Error::missing_field("updated_at"))?,
            timeout: timeout.ok_or_else(|| A::Error::missing_field("timeout"))?,
        })
    }
}

/// A label set whose names and values are interned as they are read.
struct Labels<'i>(&'i Interner);

impl<'de> DeserializeSeed<'de> for Labels<'_> {
    type Value = LabelSet;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LabelSet, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Labels<'_> {
    type Value = LabelSet;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of label names to string values")
    }
    fn visit_unit<E>(self) -> Result<LabelSet, E> {
        Ok(LabelSet::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LabelSet, A::Error> {
        let mut pairs = Vec::with_capacity(m.size_hint().unwrap_or(12));
        while let Some(p) = m.next_entry_seed(Str(self.0), Str(self.0))? {
            pairs.push(p);
        }
        Ok(LabelSet::from_pairs_in(pairs, self.0))
    }
}

/// A string taken from the interner: the text is only borrowed.
#[derive(Clone, Copy)]
struct Str<'i>(&'i Interner);

impl<'de> DeserializeSeed<'de> for Str<'_> {
    type Value = Arc<str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Arc<str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Str<'_> {
    type Value = Arc<str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, v: &str) -> Result<Arc<str>, E> {
        Ok(self.0.intern(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many alerts written as `StoredAlert` writes them, read back by
    /// both readers: the same alerts, and shared strings shared.
    #[test]
    fn reads_what_stored_alert_reads() {
        let interner = Interner::default();
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let texts = ["a", "b\"q", "ü\n", "", "job", "x\\y", "\u{1}"];
        for _ in 0..500 {
            let a = crate::model::random_alert(&mut next, &texts, 6);
            let body = serde_json::to_string(&super::super::stored(&a)).unwrap();
            let plain = super::super::alert_from(serde_json::from_str(&body).unwrap());
            let fast = read(&body, &interner).unwrap();
            assert_eq!(fast, plain, "{body}");
            assert_eq!(fast, a, "{body}");
        }
        let x = read(
            r#"{"labels":{"job":"x"},"annotations":{},"starts_at":"2024-01-01T00:00:00Z","ends_at":"2024-01-01T00:00:00Z","generator_url":"x","updated_at":"2024-01-01T00:00:00Z","timeout":false,"later":[1]}"#,
            &interner,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&x.generator_url, &interner.intern("x")));
        assert!(Arc::ptr_eq(&x.labels.pairs()[0].1, &x.generator_url));
        assert!(
            read(r#"{"labels":{}}"#, &interner).is_err(),
            "missing fields"
        );
        assert!(read(r#"{"labels":{"a":1}}"#, &interner).is_err());
    }
}
