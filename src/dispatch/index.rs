//! An index over the children of one route, so that routing an alert
//! evaluates only the children that can match it (issue 16).
//!
//! With 1,000 routes every alert used to run every child's matchers, a
//! regex among them, as Alertmanager does; that cost ate Herald's ingest
//! lead and made a reload with 100k alerts take seconds. A child's matchers
//! are all required, so any one positive matcher of it is a necessary
//! condition: the index files each child under one such matcher, either by
//! the exact value an `=` matcher wants or by the literal prefixes every
//! match of a `=~` regex begins with (`regex_syntax`'s prefix extraction).
//! A lookup yields a superset of the children that match, in child order;
//! the caller still evaluates each candidate's matchers in full, so the
//! result is the plain depth-first one, `continue` and first match included.

use std::collections::HashMap;
use std::sync::Arc;

use super::Route;
use crate::matcher::{anchored_hir, prefix_literals, MatchType, Matcher};
use crate::model::LabelSet;

/// Below this many children a plain scan is as fast as a lookup.
pub(crate) const MIN_INDEXED: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct ChildIndex {
    /// One entry per label name some child is filed under.
    names: Vec<NameIndex>,
    /// Children with no usable positive matcher (no matchers, only `!=` and
    /// `!~`, regexes without a finite set of non-empty prefixes): candidates
    /// for every alert.
    always: Vec<u32>,
}

#[derive(Debug)]
struct NameIndex {
    name: Arc<str>,
    /// `=` matchers: the value wanted (a missing label is ""), children in
    /// order.
    exact: HashMap<Box<str>, Vec<u32>>,
    /// `=~` matchers: a prefix each of the regex's matches starts with.
    prefixes: HashMap<Box<[u8]>, Vec<u32>>,
    /// The distinct lengths of `prefixes`' keys, ascending.
    lens: Vec<usize>,
}

/// What a child is filed under.
#[derive(Clone)]
enum Key {
    Exact(Arc<str>),
    Prefixes(Vec<Vec<u8>>),
}

impl Key {
    /// The index entries the key fills, as bytes.
    fn values(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match self {
            Key::Exact(v) => Box::new(std::iter::once(v.as_bytes())),
            Key::Prefixes(ps) => Box::new(ps.iter().map(Vec::as_slice)),
        }
    }
}

impl ChildIndex {
    /// The index of `children`, or `None` when there are fewer than `min`.
    pub(crate) fn build(children: &[Arc<Route>], min: usize) -> Option<ChildIndex> {
        if children.is_empty() || children.len() < min {
            return None;
        }
        let options: Vec<Vec<(Arc<str>, Key)>> =
            children.iter().map(|c| keys(&c.matchers.0)).collect();
        // How many children could be filed under each value or prefix: a
        // child goes under its key shared by the fewest siblings. (Filed by
        // its `=` matcher first, 1,000 routes put 167 children under each
        // `severity` value, and every alert ran their 167 regexes.)
        let mut shared: HashMap<(&str, &[u8]), usize> = HashMap::new();
        for opts in &options {
            for (name, key) in opts {
                for v in key.values() {
                    *shared.entry((&**name, v)).or_default() += 1;
                }
            }
        }
        let mut ix = ChildIndex::default();
        for (pos, opts) in options.iter().enumerate() {
            let pos = pos as u32;
            let chosen = opts
                .iter()
                .enumerate()
                .min_by_key(|(i, (name, key))| {
                    let cost = key
                        .values()
                        .map(|v| shared.get(&(&**name, v)).copied().unwrap_or(0))
                        .max()
                        .unwrap_or(0);
                    (cost, *i)
                })
                .map(|(_, k)| k.clone());
            let Some((name, key)) = chosen else {
                ix.always.push(pos);
                continue;
            };
            let entry = match ix.names.iter().position(|n| n.name == name) {
                Some(i) => &mut ix.names[i],
                None => {
                    ix.names.push(NameIndex {
                        name,
                        exact: HashMap::new(),
                        prefixes: HashMap::new(),
                        lens: Vec::new(),
                    });
                    let last = ix.names.len() - 1;
                    &mut ix.names[last]
                }
            };
            match key {
                Key::Exact(v) => entry.exact.entry(Box::from(&*v)).or_default().push(pos),
                Key::Prefixes(ps) => {
                    for p in ps {
                        entry.lens.push(p.len());
                        entry
                            .prefixes
                            .entry(p.into_boxed_slice())
                            .or_default()
                            .push(pos);
                    }
                }
            }
        }
        for n in &mut ix.names {
            n.lens.sort_unstable();
            n.lens.dedup();
            // Several prefixes of one regex may be filed under one key.
            for v in n.prefixes.values_mut() {
                v.dedup();
            }
        }
        Some(ix)
    }

    /// The positions of the children that may match `labels`, ascending and
    /// without repeats, into `out` (cleared first).
    pub(crate) fn candidates(&self, labels: &LabelSet, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.always);
        for n in &self.names {
            let v = labels.value(&n.name);
            if let Some(c) = n.exact.get(v) {
                out.extend_from_slice(c);
            }
            let bytes = v.as_bytes();
            for &len in &n.lens {
                let Some(head) = bytes.get(..len) else { break };
                if let Some(c) = n.prefixes.get(head) {
                    out.extend_from_slice(c);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// The positive matchers a child may be filed under, most selective first
/// (the order breaks ties in the build): `=` ones, then the regexes with a
/// finite set of non-empty prefixes, the longest shortest prefix first. A
/// regex that may match with any start gives no key.
fn keys(matchers: &[Matcher]) -> Vec<(Arc<str>, Key)> {
    let mut exact = Vec::new();
    let mut regexes: Vec<(usize, usize, Arc<str>, Key)> = Vec::new();
    for (i, m) in matchers.iter().enumerate() {
        match m.kind {
            MatchType::Equal => exact.push((m.name.clone(), Key::Exact(m.value.clone()))),
            MatchType::Regexp => {
                let Some(ps) = anchored_hir(&m.value).and_then(|h| prefix_literals(&h)) else {
                    continue;
                };
                let shortest = ps.iter().map(Vec::len).min().unwrap_or(0);
                if shortest > 0 {
                    regexes.push((shortest, i, m.name.clone(), Key::Prefixes(ps)));
                }
            }
            MatchType::NotEqual | MatchType::NotRegexp => {}
        }
    }
    regexes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    exact
        .into_iter()
        .chain(regexes.into_iter().map(|(_, _, n, k)| (n, k)))
        .collect()
}
