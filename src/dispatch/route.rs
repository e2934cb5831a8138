//! The routing tree (`dispatch/route.go`): options inherited down the tree,
//! depth-first matching with `continue`, and the route keys that prefix
//! every group key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::index::{ChildIndex, MIN_INDEXED};
use crate::config::RouteConfig;
use crate::matcher::{MatchType, Matcher, Matchers};
use crate::model::LabelSet;

#[derive(Clone, Debug, PartialEq)]
pub enum GroupBy {
    /// `group_by: ['...']`: every label of the alert.
    All,
    Labels(BTreeSet<String>),
}

#[derive(Clone, Debug)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    /// Route labels, raw: a child's override its parent's of the same name.
    pub labels: BTreeMap<String, String>,
}

impl Default for RouteOpts {
    fn default() -> Self {
        RouteOpts {
            receiver: String::new(),
            group_by: GroupBy::Labels(BTreeSet::new()),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
pub struct Route {
    pub opts: RouteOpts,
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub routes: Vec<Arc<Route>>,
    /// Alertmanager's `Route.Key()`: the parent's key, `/`, the sorted
    /// matchers. Byte-identical so group keys (and webhook `groupKey`) match.
    pub key: String,
    /// Position in a depth-first walk; a dense index for per-route state.
    pub index: usize,
    /// The children by their matchers, when there are enough of them that
    /// a lookup beats trying each.
    child_index: Option<ChildIndex>,
    /// `matchers` in the order routing evaluates them: `=` and `!=` before
    /// regexes. All of them must hold, so the order cannot change the
    /// answer; but the index hands over candidates that mostly fail one
    /// of their matchers, and with 1,000 routes the regex evaluated first
    /// (by name order) was a quarter of a reload's profile.
    check: Matchers,
}

impl Route {
    /// Builds the tree from a validated config.
    pub fn tree(root: &RouteConfig) -> Arc<Route> {
        let mut next_index = 0;
        Self::build(root, None, &mut next_index)
    }

    fn build(
        cr: &RouteConfig,
        parent: Option<(&RouteOpts, &str)>,
        next_index: &mut usize,
    ) -> Arc<Route> {
        let mut opts = parent.map(|(o, _)| o.clone()).unwrap_or_default();
        if let Some(r) = cr.receiver.as_ref().filter(|r| !r.is_empty()) {
            opts.receiver = r.clone();
        }
        if let Some(g) = &cr.group_by {
            opts.group_by = if g.len() == 1 && g[0] == "..." {
                GroupBy::All
            } else {
                GroupBy::Labels(g.iter().cloned().collect())
            };
        }
        if let Some(d) = cr.group_wait {
            opts.group_wait = d.0;
        }
        if let Some(d) = cr.group_interval {
            opts.group_interval = d.0;
        }
        if let Some(d) = cr.repeat_interval {
            opts.repeat_interval = d.0;
        }
        for (k, v) in cr.labels.iter().flatten() {
            opts.labels.insert(k.clone(), v.clone());
        }
        // Time intervals are the one option children do not inherit.
        opts.mute_time_intervals = cr.mute_time_intervals.clone().unwrap_or_default();
        opts.active_time_intervals = cr.active_time_intervals.clone().unwrap_or_default();

        let mut matchers = cr.all_matchers();
        matchers.sort();
        let key = match parent {
            Some((_, pkey)) => format!("{pkey}/{matchers}"),
            None => matchers.to_string(),
        };
        let index = *next_index;
        *next_index += 1;
        let routes: Vec<Arc<Route>> = cr
            .routes
            .iter()
            .flatten()
            .map(|c| Self::build(c, Some((&opts, &key)), next_index))
            .collect();
        Arc::new(Route {
            opts,
            check: cheap_first(&matchers),
            matchers,
            continue_matching: cr.continue_matching,
            child_index: ChildIndex::build(&routes, MIN_INDEXED),
            routes,
            key,
            index,
        })
    }

    /// The routes an alert lands in (`Route.Match`): depth first, stopping
    /// after the first matching child unless it has `continue: true`; a node
    /// whose children all miss is itself the match.
    pub fn matching(self: &Arc<Self>, labels: &LabelSet) -> Vec<Arc<Route>> {
        let mut out = Vec::new();
        self.collect_matches(labels, &mut out);
        out
    }

    fn collect_matches(self: &Arc<Self>, labels: &LabelSet, out: &mut Vec<Arc<Route>>) -> bool {
        if !self.check.matches(labels) {
            return false;
        }
        let before = out.len();
        match &self.child_index {
            None => {
                for child in &self.routes {
                    if child.collect_matches(labels, out) && !child.continue_matching {
                        break;
                    }
                }
            }
            // The children left out cannot match, so skipping them changes
            // nothing: the candidates are tried in the same order.
            Some(ix) => {
                let mut candidates = Vec::new();
                ix.candidates(labels, &mut candidates);
                for pos in candidates {
                    let Some(child) = self.routes.get(pos as usize) else {
                        continue;
                    };
                    if child.collect_matches(labels, out) && !child.continue_matching {
                        break;
                    }
                }
            }
        }
        if out.len() == before {
            out.push(self.clone());
        }
        true
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match &self.opts.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels.filter(|n| names.contains(n)),
        }
    }

    /// Every route in the tree, depth first (the order of `index`).
    pub fn walk(self: &Arc<Self>) -> Vec<Arc<Route>> {
        let mut out = vec![self.clone()];
        for c in &self.routes {
            out.extend(c.walk());
        }
        out
    }
}

/// `matchers` with the string comparisons ahead of the regexes, each kind
/// in its original order.
fn cheap_first(matchers: &Matchers) -> Matchers {
    let is_regex = |m: &Matcher| matches!(m.kind, MatchType::Regexp | MatchType::NotRegexp);
    let (regexes, plain): (Vec<Matcher>, Vec<Matcher>) =
        matchers.0.iter().cloned().partition(is_regex);
    Matchers(plain.into_iter().chain(regexes).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: ['...']
      continue: true
      routes:
        - match: {team: db}
          receiver: db-pager
    - match_re: {service: 'api|web'}
      receiver: frontend
      group_interval: 1m
    - matchers: ['severity=~"warn.*"', 'env!="dev"']
      receiver: tickets
receivers:
  - name: default
  - name: pager
  - name: db-pager
  - name: frontend
  - name: tickets
"#;

    fn tree() -> Arc<Route> {
        Route::tree(Config::load(TREE).unwrap().root_route())
    }

    fn receivers(labels: &[(&str, &str)]) -> Vec<String> {
        tree()
            .matching(&LabelSet::from_strs(labels.iter().copied()))
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect()
    }

    #[test]
    fn depth_first_with_continue() {
        assert_eq!(
            receivers(&[("severity", "critical"), ("service", "api")]),
            ["pager", "frontend"]
        );
        assert_eq!(
            receivers(&[("severity", "critical"), ("team", "db")]),
            ["db-pager"]
        );
        assert_eq!(receivers(&[("service", "web")]), ["frontend"]);
        assert_eq!(receivers(&[("service", "webx")]), ["default"]);
        assert_eq!(
            receivers(&[("severity", "warning"), ("env", "prod")]),
            ["tickets"]
        );
        assert_eq!(
            receivers(&[("severity", "warning"), ("env", "dev")]),
            ["default"]
        );
    }

    #[test]
    fn options_are_inherited() {
        let t = tree();
        let frontend = &t.routes[1];
        assert_eq!(frontend.opts.group_wait, Duration::from_secs(10));
        assert_eq!(frontend.opts.group_interval, Duration::from_secs(60));
        assert_eq!(
            frontend.opts.group_by,
            GroupBy::Labels(["alertname".to_string()].into())
        );
        let db = &t.routes[0].routes[0];
        assert_eq!(db.opts.group_by, GroupBy::All);
        assert_eq!(db.opts.repeat_interval, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn route_keys_match_alertmanager() {
        let t = tree();
        assert_eq!(t.key, "{}");
        assert_eq!(t.routes[0].key, r#"{}/{severity="critical"}"#);
        assert_eq!(
            t.routes[0].routes[0].key,
            r#"{}/{severity="critical"}/{team="db"}"#
        );
        assert_eq!(t.routes[1].key, r#"{}/{service=~"^(?:api|web)$"}"#);
        assert_eq!(t.routes[2].key, r#"{}/{env!="dev",severity=~"warn.*"}"#);
        let idx: Vec<usize> = t.walk().iter().map(|r| r.index).collect();
        assert_eq!(idx, [0, 1, 2, 3, 4]);
    }

    /// splitmix64: a seeded generator, so a failure names its case.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len())]
        }
    }

    const NAMES: [&str; 3] = ["a", "b", "c"];
    const VALUES: [&str; 14] = [
        "", "x", "y", "xy", "yx", "xx", "X", "é", "xyx", "éx", "yy", "x1.y", "x12.y", "x.y",
    ];
    const REGEXES: [&str; 20] = [
        "x",
        "x|y",
        "x.*",
        "(x|y)y",
        ".*",
        "",
        "|x",
        "xy?",
        "[xy]+",
        "(?i)X",
        "x*",
        "y.*x",
        "[^x]*",
        ".+",
        "é|x",
        "x[0-9]*[.]y",
        "x1.*|xy",
        "(?:xx|yx)x?",
        "é.*",
        "[a-z]",
    ];

    fn random_matchers(rng: &mut Rng) -> Matchers {
        let mut ms = Matchers(
            (0..rng.below(4))
                .map(|_| {
                    let kind = [
                        MatchType::Equal,
                        MatchType::NotEqual,
                        MatchType::Regexp,
                        MatchType::NotRegexp,
                    ][rng.below(4)];
                    let value = match kind {
                        MatchType::Equal | MatchType::NotEqual => rng.pick(&VALUES),
                        MatchType::Regexp | MatchType::NotRegexp => rng.pick(&REGEXES),
                    };
                    Matcher::new(kind, rng.pick(&NAMES), value).unwrap()
                })
                .collect(),
        );
        ms.sort();
        ms
    }

    fn random_tree(rng: &mut Rng, depth: usize, next: &mut usize, min: usize) -> Arc<Route> {
        let index = *next;
        *next += 1;
        let matchers = if index == 0 {
            Matchers::default()
        } else {
            random_matchers(rng)
        };
        let width = match (depth, rng.below(3)) {
            (0, _) | (_, 0) => 0,
            (_, 1) => rng.below(5),
            _ => rng.below(30),
        };
        let routes: Vec<Arc<Route>> = (0..width)
            .map(|_| random_tree(rng, depth - 1, next, min))
            .collect();
        Arc::new(Route {
            opts: RouteOpts::default(),
            check: cheap_first(&matchers),
            matchers,
            continue_matching: rng.below(3) == 0,
            child_index: ChildIndex::build(&routes, min),
            routes,
            key: String::new(),
            index,
        })
    }

    /// `Route.Match` as written, trying every child.
    fn plain(r: &Route, labels: &LabelSet, out: &mut Vec<usize>) -> bool {
        if !r.matchers.matches(labels) {
            return false;
        }
        let before = out.len();
        for c in &r.routes {
            if plain(c, labels, out) && !c.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(r.index);
        }
        true
    }

    #[test]
    fn indexed_matching_equals_plain_depth_first() {
        let mut rng = Rng(0x4e52_0016);
        let mut indexed_levels = 0;
        for case in 0..400 {
            let min = [0, 1, 3, MIN_INDEXED][case % 4];
            let tree = random_tree(&mut rng, 3, &mut 0, min);
            indexed_levels += tree
                .walk()
                .iter()
                .filter(|r| r.child_index.is_some())
                .count();
            for _ in 0..150 {
                let mut pairs: Vec<(&str, &str)> = Vec::new();
                for n in NAMES {
                    if rng.below(3) != 0 {
                        pairs.push((n, rng.pick(&VALUES)));
                    }
                }
                let labels = LabelSet::from_strs(pairs.iter().copied());
                let mut want = Vec::new();
                plain(&tree, &labels, &mut want);
                let got: Vec<usize> = tree.matching(&labels).iter().map(|r| r.index).collect();
                assert_eq!(got, want, "case {case}, labels {labels:?}, tree {tree:#?}");
            }
        }
        assert!(
            indexed_levels > 1000,
            "only {indexed_levels} indexed levels"
        );
    }

    #[test]
    fn children_are_filed_under_a_narrowing_matcher() {
        let route = |ms: &str| {
            let matchers = Matchers(crate::matcher::parse_matchers(ms).unwrap());
            Arc::new(Route {
                opts: RouteOpts::default(),
                check: cheap_first(&matchers),
                matchers,
                continue_matching: false,
                routes: Vec::new(),
                key: String::new(),
                index: 0,
                child_index: None,
            })
        };
        let children = [
            route(r#"a=~"x.*",b="y""#),
            route(r#"a=~"host-1[0-9]*[.]example""#),
            route(r#"a!="x""#),
            route(r#"a=~".*x""#),
            route(r#"a=~"p|q""#),
        ];
        let ix = ChildIndex::build(&children, 0).unwrap();
        let cands = |pairs: &[(&str, &str)]| {
            let mut out = Vec::new();
            ix.candidates(&LabelSet::from_strs(pairs.iter().copied()), &mut out);
            out
        };
        // Children 2 and 3 cannot be narrowed: always candidates.
        assert_eq!(cands(&[("b", "y")]), [0, 2, 3]);
        assert_eq!(cands(&[("a", "host-17.example")]), [1, 2, 3]);
        assert_eq!(cands(&[("a", "q")]), [2, 3, 4]);
        assert_eq!(cands(&[("a", "x"), ("b", "z")]), [2, 3]);

        // An `=` value every sibling shares narrows nothing: the children
        // are filed under their regexes' prefixes instead.
        let children: Vec<Arc<Route>> = (0..6)
            .map(|i| route(&format!(r#"s="x",a=~"h{i}[0-9]*[.]c""#)))
            .collect();
        let ix = ChildIndex::build(&children, 0).unwrap();
        let mut out = Vec::new();
        ix.candidates(&LabelSet::from_strs([("s", "x"), ("a", "h37.c")]), &mut out);
        assert_eq!(out, [3]);
    }
}
