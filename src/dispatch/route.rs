//! The routing tree (`dispatch/route.go`): options inherited down the tree,
//! depth-first matching with `continue`, and the route keys that prefix
//! every group key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::RouteConfig;
use crate::matcher::Matchers;
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
        let routes = cr
            .routes
            .iter()
            .flatten()
            .map(|c| Self::build(c, Some((&opts, &key)), next_index))
            .collect();
        Arc::new(Route {
            opts,
            matchers,
            continue_matching: cr.continue_matching,
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
        if !self.matchers.matches(labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            let matched = child.collect_matches(labels, out);
            if matched && !child.continue_matching {
                break;
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
}
