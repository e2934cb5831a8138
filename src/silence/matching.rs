//! Which silences match an alert, without trying every silence nor running
//! every regex.
//!
//! Silences in bulk are mostly "this team, this host": an equality matcher
//! many silences share and a regex such as `instance=~"host-123\..*"` that
//! picks one host. Indexing only by an equality matcher leaves hundreds of
//! regexes to run per alert, and every regex run leaves a matching cache
//! behind (hundreds of megabytes with 10k regex silences on a 2-thread
//! blocking pool). So each matcher is first reduced to the plainest test
//! that decides it exactly — a value, a set of values, a prefix followed by
//! `.*` — and a regex runs only when none does; and each silence is filed
//! under the rarest value or literal prefix one of its positive matchers
//! requires, so an alert only meets the silences that can match it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fnv::FnvBuildHasher;
use jiff::Timestamp;

use super::{Silence, SilenceState};
use crate::matcher::{self, MatchType, Matcher, Required};
use crate::model::{Fingerprint, LabelSet};

type Map<K, V> = HashMap<K, V, FnvBuildHasher>;
/// Positions in `SilenceIndex::entries`, by a label value or prefix.
type Filed = Map<Box<[u8]>, Vec<u32>>;

/// How a matcher's value test is decided.
#[derive(Debug)]
enum Form {
    /// The value equals this.
    Equal(Arc<str>),
    /// A regex's exact answer without the regex engine.
    Reduced(Arc<matcher::Form>),
    /// Only the regex itself decides: the matcher at this position of the
    /// silence's list.
    Regex(usize),
}

/// One matcher of a silence, reduced.
#[derive(Debug)]
struct Test {
    name: Arc<str>,
    /// `!=` and `!~`: the form's answer, inverted.
    negate: bool,
    form: Form,
}

impl Test {
    fn matches(&self, silence: &Silence, labels: &LabelSet) -> bool {
        let v = labels.value(&self.name);
        let hit = match &self.form {
            Form::Equal(want) => v == &**want,
            Form::Reduced(form) => form.matches(v),
            // The regex decides the whole answer, negation included.
            Form::Regex(i) => return silence.matchers.0.get(*i).is_some_and(|m| m.matches(v)),
        };
        hit != self.negate
    }
}

/// Where a silence can be filed: values or a prefix that a label must have
/// for the silence to match.
#[derive(Debug, Clone)]
enum Key {
    /// The label has one of these values (none empty).
    Values(Arc<str>, Vec<Box<[u8]>>),
    /// The label's value starts with this (not empty).
    Prefix(Arc<str>, Box<[u8]>),
}

/// A silence's matchers reduced once, kept from one index to the next
/// while the silence's matchers stay the same.
#[derive(Debug)]
pub(super) struct Compiled {
    tests: Box<[Test]>,
    keys: Box<[Key]>,
}

impl Compiled {
    pub(super) fn new(silence: &Silence) -> Compiled {
        let mut tests = Vec::with_capacity(silence.matchers.0.len());
        let mut keys = Vec::new();
        for (i, m) in silence.matchers.0.iter().enumerate() {
            let (test, key) = reduce(m, i);
            tests.push(test);
            keys.extend(key);
        }
        // Cheap tests first, so that a silence that fails one rarely runs a
        // regex.
        tests.sort_by_key(|t| matches!(t.form, Form::Regex(_)));
        Compiled {
            tests: tests.into(),
            keys: keys.into(),
        }
    }

    fn matches(&self, silence: &Silence, labels: &LabelSet) -> bool {
        self.tests.iter().all(|t| t.matches(silence, labels))
    }
}

/// A matcher's test, and where a silence holding it may be filed.
fn reduce(m: &Matcher, i: usize) -> (Test, Option<Key>) {
    let test = |negate, form| Test {
        name: m.name.clone(),
        negate,
        form,
    };
    match m.kind {
        MatchType::Equal => {
            // An empty value also matches a missing label: no key.
            let key = (!m.value.is_empty())
                .then(|| Key::Values(m.name.clone(), vec![m.value.as_bytes().into()]));
            (test(false, Form::Equal(m.value.clone())), key)
        }
        MatchType::NotEqual => (test(true, Form::Equal(m.value.clone())), None),
        MatchType::Regexp | MatchType::NotRegexp => {
            let negate = m.kind == MatchType::NotRegexp;
            // The matcher reduced its regex when it was parsed; only what
            // every match holds (the key) is read from the regex again.
            let (_, required) = matcher::reduce_regex(&m.value);
            let key = if negate {
                None
            } else {
                required.map(|r| key(&m.name, r))
            };
            let form = match m.reduced() {
                Some(form) => Form::Reduced(form.clone()),
                None => Form::Regex(i),
            };
            (test(negate, form), key)
        }
    }
}

/// Where a silence holding a positive matcher on `name` may be filed.
fn key(name: &Arc<str>, required: Required) -> Key {
    match required {
        Required::Values(v) => Key::Values(name.clone(), v),
        Required::Prefix(p) => Key::Prefix(name.clone(), p),
    }
}

/// A silence in the index.
struct Entry {
    silence: Arc<Silence>,
    compiled: Arc<Compiled>,
}

/// Silences filed under a label's value prefixes.
#[derive(Default)]
struct Prefixes {
    /// The distinct prefix lengths, ascending: the value's prefixes of
    /// these lengths are looked up.
    lens: Vec<usize>,
    by: Filed,
}

/// The silences that are not expired, each filed under one key (see the
/// module doc) or, without any, checked against every alert. Rebuilt
/// after any change; changes are rare next to lookups.
#[derive(Default)]
pub(super) struct SilenceIndex {
    entries: Vec<Entry>,
    values: Map<Arc<str>, Filed>,
    prefixes: Map<Arc<str>, Prefixes>,
    rest: Vec<u32>,
    alerts: AlertCache,
}

/// Shards of the per-alert cache: the API renders an answer on several
/// threads at once, each looking up every alert it renders.
const SHARDS: usize = 64;

/// Which of this index's silences each alert's labels match, by the
/// alert's fingerprint (Alertmanager's `Silencer` keeps the same, by the
/// same key): every GET of the alerts, every flush and every `/metrics`
/// scrape asks it for each alert, and without the cache each asked the
/// index again (with 20k silences and 100k alerts, most of an answer's
/// time). What is kept is the match by labels alone, whatever the
/// silence's state: whether a match is active is decided at each lookup
/// from its times, so a silence that starts or ends needs no change here.
/// A new index (any silence changed) starts with an empty cache.
struct AlertCache {
    shards: Box<[Shard]>,
}

impl Default for AlertCache {
    fn default() -> Self {
        AlertCache {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// Padded to a cache line, so two threads on neighbouring shards do not
/// contend.
#[derive(Default)]
#[repr(align(64))]
struct Shard(Mutex<Map<u64, Cached>>);

struct Cached {
    /// Positions in `SilenceIndex::entries`.
    matches: Box<[u32]>,
    /// Looked up since the last sweep.
    used: bool,
}

impl AlertCache {
    fn shard(&self, fp: Fingerprint) -> std::sync::MutexGuard<'_, Map<u64, Cached>> {
        // FNV's high bits mix better than its low ones.
        let i = ((fp.0 >> 32) ^ fp.0) as usize % SHARDS;
        self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SilenceIndex {
    /// `previous` lends the reduced matchers of silences it held whose
    /// matchers are unchanged, so a change does not reparse every regex.
    pub(super) fn build<'a>(
        silences: impl Iterator<Item = &'a Arc<Silence>>,
        now: Timestamp,
        previous: Option<&SilenceIndex>,
    ) -> SilenceIndex {
        let known: Map<&str, &Entry> = previous
            .map(|p| {
                p.entries
                    .iter()
                    .map(|e| (e.silence.id.as_str(), e))
                    .collect()
            })
            .unwrap_or_default();
        let entries: Vec<Entry> = silences
            .filter(|s| s.state(now) != SilenceState::Expired)
            .map(|s| {
                let compiled = match known.get(s.id.as_str()) {
                    Some(e) if e.silence.matchers == s.matchers => e.compiled.clone(),
                    _ => Arc::new(Compiled::new(s)),
                };
                Entry {
                    silence: s.clone(),
                    compiled,
                }
            })
            .collect();
        // How many silences could be filed under each value and prefix:
        // each silence goes under its least shared key.
        let mut shared: Map<(&str, &[u8], bool), usize> = Map::default();
        for e in &entries {
            for k in e.compiled.keys.iter() {
                match k {
                    Key::Values(n, vs) => {
                        for v in vs {
                            *shared.entry((&**n, &**v, false)).or_default() += 1;
                        }
                    }
                    Key::Prefix(n, p) => *shared.entry((&**n, &**p, true)).or_default() += 1,
                }
            }
        }
        let weight = |k: &Key| match k {
            Key::Values(n, vs) => vs
                .iter()
                .map(|v| shared.get(&(&**n, &**v, false)).copied().unwrap_or(0))
                .sum(),
            // A prefix costs a lookup per distinct length: prefer a value.
            Key::Prefix(n, p) => shared.get(&(&**n, &**p, true)).copied().unwrap_or(0) + 1,
        };
        let mut idx = SilenceIndex::default();
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            match e.compiled.keys.iter().min_by_key(|k| weight(k)) {
                Some(Key::Values(n, vs)) => {
                    let by = idx.values.entry(n.clone()).or_default();
                    for v in vs {
                        by.entry(v.clone()).or_default().push(i);
                    }
                }
                Some(Key::Prefix(n, p)) => {
                    let by = idx.prefixes.entry(n.clone()).or_default();
                    by.by.entry(p.clone()).or_default().push(i);
                    if let Err(at) = by.lens.binary_search(&p.len()) {
                        by.lens.insert(at, p.len());
                    }
                }
                None => idx.rest.push(i),
            }
        }
        drop(shared);
        idx.entries = entries;
        idx
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Calls `f` with each silence that is active at `now` and matches
    /// `labels`, each once, until `f` returns false.
    pub(super) fn each_match(
        &self,
        labels: &LabelSet,
        now: Timestamp,
        mut f: impl FnMut(&Silence) -> bool,
    ) {
        self.candidates(labels, |i| {
            let e = &self.entries[i as usize];
            if e.silence.state(now) == SilenceState::Active
                && e.compiled.matches(&e.silence, labels)
            {
                f(&e.silence)
            } else {
                true
            }
        });
    }

    /// `each_match` for an alert, through the per-alert cache: the match
    /// by labels is looked up, or found and kept; the state at `now` is
    /// checked either way. Returns how long asking the index took when
    /// it was asked (a miss).
    pub(super) fn each_match_cached(
        &self,
        fingerprint: Fingerprint,
        labels: &LabelSet,
        now: Timestamp,
        mut f: impl FnMut(&Silence) -> bool,
    ) -> Option<std::time::Duration> {
        let mut each_active = |matches: &[u32]| {
            for &i in matches {
                let s = &self.entries[i as usize].silence;
                if s.state(now) == SilenceState::Active && !f(s) {
                    return;
                }
            }
        };
        {
            let mut shard = self.alerts.shard(fingerprint);
            if let Some(c) = shard.get_mut(&fingerprint.0) {
                c.used = true;
                each_active(&c.matches);
                return None;
            }
        }
        // Found with the shard unlocked: another thread may find it too,
        // and keeps the same answer.
        let started = std::time::Instant::now();
        let mut matches = Vec::new();
        self.candidates(labels, |i| {
            let e = &self.entries[i as usize];
            if e.compiled.matches(&e.silence, labels) {
                matches.push(i);
            }
            true
        });
        each_active(&matches);
        let took = started.elapsed();
        self.alerts.shard(fingerprint).insert(
            fingerprint.0,
            Cached {
                matches: matches.into(),
                used: true,
            },
        );
        Some(took)
    }

    /// Forgets the alerts not looked up since the last sweep (gone, most
    /// likely), so the cache holds about the alerts asked about lately.
    pub(super) fn sweep_cache(&self) {
        for shard in self.alerts.shards.iter() {
            let mut map = shard.0.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, c| std::mem::replace(&mut c.used, false));
        }
    }

    /// Calls `f` with the position of each silence filed where `labels`
    /// can meet it, each once, until `f` returns false.
    fn candidates(&self, labels: &LabelSet, mut f: impl FnMut(u32) -> bool) {
        // A silence is filed under one label, and under values or a
        // prefix of it that cannot both fit one value: each is met once.
        for (n, v) in labels.iter() {
            if let Some(found) = self.values.get(n).and_then(|by| by.get(v.as_bytes())) {
                for &i in found {
                    if !f(i) {
                        return;
                    }
                }
            }
            if let Some(p) = self.prefixes.get(n) {
                for &len in &p.lens {
                    let Some(head) = v.as_bytes().get(..len) else {
                        break;
                    };
                    for &i in p.by.get(head).into_iter().flatten() {
                        if !f(i) {
                            return;
                        }
                    }
                }
            }
        }
        for &i in &self.rest {
            if !f(i) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Matchers;

    /// A small deterministic generator: the failures it finds replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    const PIECES: &[&str] = &[
        "a",
        "b",
        "ab",
        "host-1",
        r"\.",
        ".",
        ".*",
        ".+",
        "(?s:.*)",
        "[ab]",
        "[a-c]",
        "(a|b)",
        "a?",
        "b{1,2}",
        "(?i)a",
        "(?i:ab)",
        "é",
        "[éè]",
        r"\d",
        r"\b",
        "^",
        "$",
        "(?m:^)",
        "|",
        "()",
        "x*",
        "(a|ab)",
        "[^a]",
        r"\n",
        "(?:)",
        "a{0,3}",
        "[[:alpha:]]",
        r"\w",
    ];

    const VALUES: &[&str] = &[
        "",
        "a",
        "b",
        "ab",
        "ba",
        "abb",
        "aab",
        "A",
        "Ab",
        "host-1",
        "host-1.",
        "host-1.x",
        "host-1.x\n",
        "host-12",
        "é",
        "è",
        "aé",
        "1",
        "a1",
        "x",
        "xx",
        "a\nb",
        "\n",
        "abab",
        "c",
        "bc",
        "aaa",
    ];

    fn random_pattern(rng: &mut Rng) -> String {
        (0..1 + rng.below(4)).map(|_| rng.pick(PIECES)).collect()
    }

    /// Every reduced form answers what the regex answers, on patterns
    /// built from pieces that exercise each form and each way out of one.
    #[test]
    fn reduced_regexes_agree_with_the_regex() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut forms = [0usize; 4];
        for _ in 0..4_000 {
            let pattern = random_pattern(&mut rng);
            for kind in [MatchType::Regexp, MatchType::NotRegexp] {
                let Ok(m) = Matcher::new(kind, "l", &pattern) else {
                    continue;
                };
                let s = silence(vec![m.clone()]);
                let c = Compiled::new(&s);
                forms[match c.tests[0].form {
                    Form::Equal(_) => 0,
                    Form::Reduced(ref f) => match **f {
                        matcher::Form::Set(_) => 1,
                        matcher::Form::Prefix { .. } => 2,
                    },
                    Form::Regex(_) => 3,
                }] += 1;
                // The regex engine's answer, which both the matcher (reduced
                // when parsed) and the silence index must give.
                let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("compiles");
                for v in VALUES {
                    let labels = LabelSet::from_strs([("l", *v)]);
                    let want = re.is_match(v) != (kind == MatchType::NotRegexp);
                    assert_eq!(m.matches(v), want, "matcher {m} on {v:?}");
                    assert_eq!(c.matches(&s, &labels), want, "{m} on {v:?}: {c:?}");
                    // A key is something every match has.
                    if want && kind == MatchType::Regexp {
                        for k in c.keys.iter() {
                            match k {
                                Key::Values(_, vs) => {
                                    assert!(vs.iter().any(|x| **x == *v.as_bytes()), "{m} {v:?}")
                                }
                                Key::Prefix(_, p) => {
                                    assert!(v.as_bytes().starts_with(p), "{m} {v:?}")
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(
            forms[1..].iter().all(|&n| n > 200),
            "each regex form is exercised: {forms:?}"
        );
    }

    #[test]
    fn plain_shapes_need_no_regex() {
        let form = |p: &str| {
            let s = silence(vec![Matcher::new(MatchType::Regexp, "l", p).unwrap()]);
            let c = Compiled::new(&s);
            (format!("{:?}", c.tests[0].form), format!("{:?}", c.keys))
        };
        let (f, k) = form(r"host-123\..*");
        assert!(
            f.starts_with("Reduced(Prefix") && k.contains("Prefix"),
            "{f} {k}"
        );
        let (f, k) = form("a|b|c");
        assert!(
            f.starts_with("Reduced(Set") && k.contains("Values"),
            "{f} {k}"
        );
        let (f, k) = form("db-[0-9]+");
        assert!(f.starts_with("Regex") && k.contains("Prefix"), "{f} {k}");
        let (f, k) = form("a|");
        assert!(
            f.starts_with("Reduced(Set") && k == "[]",
            "the empty value matches a missing label: {f} {k}"
        );
    }

    fn silence(matchers: Vec<Matcher>) -> Silence {
        Silence {
            id: String::new(),
            matchers: Matchers(matchers),
            starts_at: Timestamp::from_second(100).unwrap(),
            ends_at: Timestamp::from_second(200).unwrap(),
            updated_at: Timestamp::from_second(0).unwrap(),
            created_by: String::new(),
            comment: String::new(),
            annotations: Default::default(),
        }
    }

    const NAMES: &[&str] = &["team", "instance", "env", "job"];
    const LABEL_VALUES: &[&str] = &[
        "",
        "team-1",
        "team-2",
        "host-1.a",
        "host-12.a",
        "host-2.b",
        "prod",
        "dev",
        "a",
        "node",
    ];
    const REGEXES: &[&str] = &[
        r"host-1\..*",
        r"host-12\..*",
        r"host-2\..*",
        "team-.*",
        "team-1|team-2",
        "prod|dev",
        "p.*d",
        "host-[12]+\\..*",
        ".*",
        "(?i)PROD",
        "node",
        "",
        "a|",
        "host-1.*a",
    ];

    fn random_matcher(rng: &mut Rng) -> Matcher {
        let name = rng.pick(NAMES);
        let kind = [
            MatchType::Equal,
            MatchType::Equal,
            MatchType::Regexp,
            MatchType::Regexp,
            MatchType::NotEqual,
            MatchType::NotRegexp,
        ][rng.below(6)];
        let value = match kind {
            MatchType::Equal | MatchType::NotEqual => rng.pick(LABEL_VALUES),
            _ => rng.pick(REGEXES),
        };
        Matcher::new(kind, name, value).unwrap()
    }

    /// The index finds exactly the active silences a scan of all of them
    /// finds, whatever the mix of matchers, states and labels, and when it
    /// is rebuilt from a previous index.
    #[test]
    fn index_finds_what_a_scan_finds() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let t = |s| Timestamp::from_second(s).unwrap();
        for round in 0..200 {
            let mut silences: Vec<Arc<Silence>> = (0..1 + rng.below(60))
                .map(|i| {
                    let mut s = silence(
                        (0..1 + rng.below(3))
                            .map(|_| random_matcher(&mut rng))
                            .collect(),
                    );
                    s.id = format!("s{i:03}");
                    let start = 100 + rng.below(3) as i64 * 50;
                    s.starts_at = t(start);
                    s.ends_at = t(start + 100);
                    Arc::new(s)
                })
                .collect();
            let first = SilenceIndex::build(silences.iter(), t(120), None);
            // Some silences change; the rest keep their reduced matchers.
            for s in silences.iter_mut() {
                if rng.below(4) != 0 {
                    continue;
                }
                let mut c = (**s).clone();
                c.matchers.0.push(random_matcher(&mut rng));
                *s = Arc::new(c);
            }
            let idx = SilenceIndex::build(silences.iter(), t(120), Some(&first));
            for _ in 0..50 {
                let mut labels: Vec<(&str, &str)> = Vec::new();
                for n in NAMES {
                    if rng.below(3) != 0 {
                        labels.push((n, rng.pick(LABEL_VALUES)));
                    }
                }
                let labels = LabelSet::from_strs(labels);
                for now in [t(120), t(180), t(260)] {
                    let mut scan: Vec<&str> = silences
                        .iter()
                        .filter(|s| s.state(t(120)) != SilenceState::Expired)
                        .filter(|s| s.state(now) == SilenceState::Active && s.matches(&labels))
                        .map(|s| s.id.as_str())
                        .collect();
                    scan.sort();
                    let mut found = Vec::new();
                    idx.each_match(&labels, now, |s| {
                        found.push(s.id.clone());
                        true
                    });
                    found.sort();
                    assert_eq!(found, scan, "round {round}, {labels:?} at {now}");
                }
            }
        }
    }
}
