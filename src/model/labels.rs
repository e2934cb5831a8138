use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::gostr::go_quote;

/// An alert's identity: FNV-1a 64 over its label set, exactly as
/// `prometheus/common` computes `LabelSet.Fingerprint`, so that API answers,
/// group membership and the webhook `fingerprint` field match Alertmanager.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// A label set, sorted by name and immutable. Cloning shares the pairs: the
/// same set is held by the alert store, aggregation groups and API answers
/// without copying strings, which keeps 100k alerts small.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct LabelSet(Arc<[(Arc<str>, Arc<str>)]>);

impl LabelSet {
    /// Builds a set from pairs in any order; for a repeated name the last
    /// value wins, as when Go decodes a JSON object into a map.
    pub fn from_pairs(mut pairs: Vec<(Arc<str>, Arc<str>)>) -> Self {
        // Stable sort keeps insertion order among equal names, so "last wins"
        // means keeping the last of each run.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(pairs.len());
        for p in pairs {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
        LabelSet(out.into())
    }

    pub fn from_strs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::from_pairs(
            pairs
                .into_iter()
                .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    /// The value Alertmanager sees for a label: a missing label is the empty
    /// string (Go map semantics), which is what matchers are evaluated on.
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    pub fn pairs(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A new set holding only the pairs whose names `keep` accepts, sharing
    /// the strings.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> LabelSet {
        LabelSet(self.0.iter().filter(|(n, _)| keep(n)).cloned().collect())
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for (n, v) in self.0.iter() {
            h = fnv_add(h, n.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
            h = fnv_add(h, v.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// Go's `LabelSet.String()`: `{a="x", b="y"}`, by label name as
    /// prometheus/common renders it since Alertmanager 0.26 (`a` before `a0`;
    /// 0.25 sorted the formatted pairs). Group keys, and so notification log
    /// keys, are built from it.
    pub fn go_string(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(n, v)| format!("{n}={}", go_quote(v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    /// Go's `LabelSet.Before`, the order of alert groups in the API.
    pub fn before(&self, o: &LabelSet) -> bool {
        if self.len() != o.len() {
            return self.len() < o.len();
        }
        let mut names: Vec<&str> = self
            .0
            .iter()
            .chain(o.0.iter())
            .map(|(n, _)| n.as_ref())
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            match (self.get(n), o.get(n)) {
                (None, Some(_)) => return true,
                (Some(_), None) => return false,
                (Some(a), Some(b)) if a != b => return a < b,
                _ => {}
            }
        }
        false
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.go_string())
    }
}

impl Serialize for LabelSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.0.iter() {
            m.serialize_entry(n.as_ref(), v.as_ref())?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for LabelSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label names to string values")
            }
            fn visit_unit<E>(self) -> Result<LabelSet, E> {
                Ok(LabelSet::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LabelSet, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    pairs.push((Arc::from(k.as_ref()), Arc::from(v.as_ref())));
                }
                Ok(LabelSet::from_pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

impl LabelSet {
    /// The same set with every string taken from `interner`, so equal
    /// strings across alerts share one allocation.
    pub fn interned(&self, interner: &super::Interner) -> LabelSet {
        LabelSet(
            self.0
                .iter()
                .map(|(n, v)| (interner.intern(n), interner.intern(v)))
                .collect(),
        )
    }
}

impl LabelSet {
    /// Appends the set as a JSON object with Go's escaping, without going
    /// through serde: API answers at 100k alerts spend most time here.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::gojson::write_str(out, n);
            out.push(b':');
            crate::gojson::write_str(out, v);
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_prometheus_common() {
        // Values from prometheus/common model/signature_test.go.
        assert_eq!(
            LabelSet::default().fingerprint().0,
            14_695_981_039_346_656_037
        );
        let ls = LabelSet::from_strs([("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(ls.fingerprint().0, 5_799_056_148_416_392_346);
        assert_eq!(
            LabelSet::from_strs([("a", "b")])
                .fingerprint()
                .to_string()
                .len(),
            16
        );
    }

    #[test]
    fn go_string_sorts_by_name() {
        let ls = LabelSet::from_strs([("a0", "2"), ("b", "x\"y"), ("a", "1")]);
        assert_eq!(ls.go_string(), r#"{a="1", a0="2", b="x\"y"}"#);
        assert_eq!(LabelSet::default().go_string(), "{}");
    }

    #[test]
    fn last_duplicate_wins_and_lookup_works() {
        let ls = LabelSet::from_strs([("b", "1"), ("a", "x"), ("b", "2")]);
        assert_eq!(ls.len(), 2);
        assert_eq!(ls.get("b"), Some("2"));
        assert_eq!(ls.value("missing"), "");
    }

    #[test]
    fn before_orders_like_go() {
        let a = LabelSet::from_strs([("a", "1")]);
        let b = LabelSet::from_strs([("a", "2")]);
        let two = LabelSet::from_strs([("a", "0"), ("b", "0")]);
        assert!(a.before(&b));
        assert!(!b.before(&a));
        assert!(a.before(&two));
        let c = LabelSet::from_strs([("b", "1")]);
        // c lacks "a", which a has: the set missing the first differing name is first.
        assert!(c.before(&a));
        assert!(!a.before(&a));
    }
}
