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

/// A label set, sorted by name and immutable. Cloning shares the strings:
/// the same set is held by the alert store, aggregation groups and API
/// answers without copying.
///
/// Names and values are two slices rather than one of pairs because the
/// alerts of a rule all carry the same names: sets built through the
/// [`Interner`](super::Interner) share one names slice, and each alert pays
/// 16 bytes per label (its value) instead of 32. At 100k alerts of ten
/// labels that was 352 bytes an alert for the pairs, the largest single
/// cost in the store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LabelSet {
    /// Sorted, no name twice.
    names: Arc<[Arc<str>]>,
    /// `values[i]` is the value of `names[i]`.
    values: Arc<[Arc<str>]>,
}

impl Default for LabelSet {
    fn default() -> Self {
        // Empty sets are common (annotations, route labels): one shared
        // allocation rather than two each.
        static EMPTY: std::sync::LazyLock<Arc<[Arc<str>]>> =
            std::sync::LazyLock::new(|| Arc::from(Vec::new()));
        LabelSet {
            names: EMPTY.clone(),
            values: EMPTY.clone(),
        }
    }
}

impl LabelSet {
    /// Builds a set from pairs in any order; for a repeated name the last
    /// value wins, as when Go decodes a JSON object into a map.
    pub fn from_pairs(pairs: Vec<(Arc<str>, Arc<str>)>) -> Self {
        let (names, values): (Vec<_>, Vec<_>) = sorted_last_wins(pairs).into_iter().unzip();
        LabelSet {
            names: names.into(),
            values: values.into(),
        }
    }

    /// `from_pairs` whose names slice is shared through `interner` with
    /// every other set of the same (interned) names.
    pub(crate) fn from_pairs_in(
        pairs: Vec<(Arc<str>, Arc<str>)>,
        interner: &super::Interner,
    ) -> Self {
        Self::from_sorted_unique(sorted_last_wins(pairs).into_iter(), interner)
    }

    /// A set from interned pairs already sorted by name with no name
    /// repeated (the POST path sorts and deduplicates before it interns),
    /// its names slice shared through `interner`. Debug builds check the
    /// order.
    pub(crate) fn from_sorted_unique(
        pairs: impl ExactSizeIterator<Item = (Arc<str>, Arc<str>)>,
        interner: &super::Interner,
    ) -> Self {
        let (names, values): (Vec<_>, Vec<_>) = pairs.unzip();
        debug_assert!(names.windows(2).all(|w| w[0] < w[1]));
        LabelSet {
            names: interner.names(names),
            values: values.into(),
        }
    }

    /// The pairs, name and value, in name order.
    fn entries(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &Arc<str>)> + '_ {
        self.names.iter().zip(self.values.iter())
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
        self.names
            .binary_search_by(|n| n.as_ref().cmp(name))
            .ok()
            .and_then(|i| self.values.get(i))
            .map(|v| v.as_ref())
    }

    /// The value Alertmanager sees for a label: a missing label is the empty
    /// string (Go map semantics), which is what matchers are evaluated on.
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The pairs, sharing the strings.
    pub fn pairs(&self) -> Vec<(Arc<str>, Arc<str>)> {
        self.entries()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A new set holding only the pairs whose names `keep` accepts, sharing
    /// the strings.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> LabelSet {
        let (names, values): (Vec<_>, Vec<_>) = self
            .entries()
            .filter(|(n, _)| keep(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .unzip();
        LabelSet {
            names: names.into(),
            values: values.into(),
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for (n, v) in self.entries() {
            h = fnv_add(h, n.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
            h = fnv_add(h, v.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// The fingerprint of `self.filter(keep)`, without building that set:
    /// the dispatcher needs only the group's identity to find an existing
    /// group.
    pub fn fingerprint_of(&self, mut keep: impl FnMut(&str) -> bool) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for (n, v) in self.entries().filter(|(n, _)| keep(n)) {
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
            .entries()
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
            .names
            .iter()
            .chain(o.names.iter())
            .map(|n| n.as_ref())
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

/// Sorts pairs by name; of a repeated name the last value wins. The sort
/// is stable, so the last of a name is the last of its run.
fn sorted_last_wins(mut pairs: Vec<(Arc<str>, Arc<str>)>) -> Vec<(Arc<str>, Arc<str>)> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(pairs.len());
    for p in pairs {
        match out.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => out.push(p),
        }
    }
    out
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.go_string())
    }
}

impl Serialize for LabelSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (n, v) in self.entries() {
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
        LabelSet::from_sorted_unique(
            self.entries()
                .map(|(n, v)| (interner.intern(n), interner.intern(v))),
            interner,
        )
    }
}

impl LabelSet {
    /// Appends the set as a JSON object with Go's escaping, without going
    /// through serde: API answers at 100k alerts spend most time here.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (n, v)) in self.entries().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::gojson::write_str(out, n);
            out.push(b':');
            crate::gojson::write_str(out, v);
        }
        out.push(b'}');
    }

    /// `write_json` for Herald's own stored JSON (alert rows, history
    /// records): strings with nothing JSON must escape are copied as they
    /// are (`gojson::write_plain_str`), which reads back the same.
    pub(crate) fn write_plain_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (n, v)) in self.entries().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::gojson::write_plain_str(out, n);
            out.push(b':');
            crate::gojson::write_plain_str(out, v);
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
    fn fingerprint_of_is_the_filtered_sets() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let names = ["alertname", "job", "a", "b", "instance", "z"];
        for _ in 0..2000 {
            let pairs: Vec<(String, String)> = (0..next() % 7)
                .map(|_| {
                    (
                        names[(next() % names.len() as u64) as usize].to_string(),
                        (next() % 4).to_string(),
                    )
                })
                .collect();
            let ls = LabelSet::from_strs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mask = next();
            let keep = |n: &str| {
                names
                    .iter()
                    .position(|x| *x == n)
                    .is_some_and(|i| mask >> i & 1 == 1)
            };
            assert_eq!(ls.fingerprint_of(keep), ls.filter(keep).fingerprint());
            assert_eq!(ls.fingerprint_of(|_| true), ls.fingerprint());
        }
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
