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
enum Key {
    Exact(Arc<str>),
    Prefixes(Vec<Vec<u8>>),
}

impl ChildIndex {
    /// The index of `children`, or `None` when there are fewer than `min`.
    pub(crate) fn build(children: &[Arc<Route>], min: usize) -> Option<ChildIndex> {
        if children.is_empty() || children.len() < min {
            return None;
        }
        let mut ix = ChildIndex::default();
        for (pos, child) in children.iter().enumerate() {
            let pos = pos as u32;
            let Some((name, key)) = best_key(&child.matchers.0) else {
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

/// The most selective positive matcher of a child: an `=` one, else the
/// regex whose shortest prefix is longest. `None` when no matcher narrows
/// the values (a regex that may match with any start gives no key).
fn best_key(matchers: &[Matcher]) -> Option<(Arc<str>, Key)> {
    let mut best: Option<(usize, Arc<str>, Key)> = None;
    for m in matchers {
        match m.kind {
            MatchType::Equal => return Some((m.name.clone(), Key::Exact(m.value.clone()))),
            MatchType::Regexp => {
                let Some(ps) = anchored_hir(&m.value).and_then(|h| prefix_literals(&h)) else {
                    continue;
                };
                let shortest = ps.iter().map(Vec::len).min().unwrap_or(0);
                if shortest > 0 && best.as_ref().is_none_or(|(s, _, _)| shortest > *s) {
                    best = Some((shortest, m.name.clone(), Key::Prefixes(ps)));
                }
            }
            MatchType::NotEqual | MatchType::NotRegexp => {}
        }
    }
    best.map(|(_, n, k)| (n, k))
}
