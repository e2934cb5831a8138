//! Alertmanager's configuration file, parsed strictly into typed values.
//!
//! Parsing follows `gopkg.in/yaml.v2`'s `UnmarshalStrict` as Alertmanager
//! uses it (unknown and duplicate keys are errors, anchors and merge keys
//! work), then applies Alertmanager's defaults and validation rules. A config
//! that loads here is one the dispatcher can run without re-checking anything.
//!
//! This module is the whole file; the sections it is made of live with the
//! code that reads them (receivers and `global:` in `notify`, time intervals
//! in `timeinterval`), and the shared vocabulary in `commoncfg`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::commoncfg::{
    check_http_url, null_default, Authorization, BasicAuth, FieldError, HttpClientConfig, Secret,
    TlsConfig, Unsupported, SECRET_TOKEN,
};
pub use crate::notify::email::{
    canonical_header_key, EmailConfig, HostPort, DEFAULT_EMAIL_SUBJECT,
};
pub use crate::notify::slack::{
    SlackAction, SlackConfig, SlackConfirm, SlackField, DEFAULT_SLACK_APP_URL,
};
pub use crate::notify::webhook::WebhookConfig;
pub use crate::notify::{GlobalConfig, ReceiverConfig};
pub use crate::timeinterval::TimeIntervalDef;

use crate::duration::PromDuration;
use crate::matcher::{
    is_valid_classic_label_name, is_valid_label_name, MatchType, Matcher, Matchers,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(String),
    /// A rule of Alertmanager's that the YAML was well-formed but broke.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    crate::commoncfg::invalid(field, message).into()
}

/// A regular expression from `match_re`: kept as written (for re-serialising)
/// and compiled anchored, as Alertmanager's `config.Regexp` does.
#[derive(Clone, Debug)]
pub struct AnchoredRegex {
    pub source: String,
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        regex::Regex::new(&format!("^(?:{source})$")).map_err(serde::de::Error::custom)?;
        Ok(AnchoredRegex { source })
    }
}

impl Serialize for AnchoredRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_eq: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_re: Option<BTreeMap<String, AnchoredRegex>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matchers: Option<Matchers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_time_intervals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_time_intervals: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
    /// Route labels (0.34): inherited by child routes, values are text
    /// templates rendered per aggregation group. Checked at load. Left out
    /// of the re-serialised config (`/api/v2/status`), which `amtool` 0.33
    /// parses strictly and would refuse with them.
    #[serde(default, skip_serializing)]
    pub labels: Option<BTreeMap<String, String>>,
}

impl RouteConfig {
    /// All matchers of the route, legacy `match`/`match_re` first, as
    /// Alertmanager's `NewRoute` gathers them (it sorts them afterwards).
    pub fn all_matchers(&self) -> Matchers {
        let mut out = Vec::new();
        for (k, v) in self.match_eq.iter().flatten() {
            if let Ok(m) = Matcher::new(MatchType::Equal, k, v) {
                out.push(m);
            }
        }
        for (k, v) in self.match_re.iter().flatten() {
            // Alertmanager builds these from the compiled, anchored regex's
            // string, so the anchors appear in route keys (and thus in group
            // keys and the notification log). Anchoring twice matches the same.
            // Validated when parsed, so this cannot fail.
            if let Ok(m) = Matcher::new(MatchType::Regexp, k, &format!("^(?:{})$", v.source)) {
                out.push(m);
            }
        }
        out.extend(self.matchers.iter().flat_map(|m| m.0.iter().cloned()));
        Matchers(out)
    }

    fn has_matchers(&self) -> bool {
        self.match_eq.as_ref().is_some_and(|m| !m.is_empty())
            || self.match_re.as_ref().is_some_and(|m| !m.is_empty())
            || self.matchers.as_ref().is_some_and(|m| !m.0.is_empty())
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_match: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_match_re: Option<BTreeMap<String, AnchoredRegex>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_matchers: Option<Matchers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_match: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_match_re: Option<BTreeMap<String, AnchoredRegex>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_matchers: Option<Matchers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: Option<GlobalConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteConfig>,
    #[serde(
        default,
        deserialize_with = "null_entries_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inhibit_rules: Vec<InhibitRule>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub templates: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mute_time_intervals: Vec<TimeIntervalDef>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub time_intervals: Vec<TimeIntervalDef>,
    /// Alertmanager 0.30's OTLP tracing (`tracing/config.go`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<crate::otel::TracingConfig>,
    /// Alertmanager 0.33's event recorder, parsed (and checked) whether or
    /// not `--enable-feature=event-recorder` turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_recorder: Option<crate::eventrecorder::EventRecorderConfig>,
}

/// A list whose null entries (`- ` with nothing after it) are the zero
/// value, as `yaml.v2` decodes them into a slice of structs.
fn null_entries_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let v: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A config that passed every check, with the text it came from (whose hash
/// is `alertmanager_config_hash`).
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub original: String,
}

impl LoadedConfig {
    pub fn global(&self) -> &GlobalConfig {
        // `Config::load` always fills it.
        self.config
            .global
            .as_ref()
            .unwrap_or_else(|| unreachable!("global filled at load"))
    }

    pub fn root_route(&self) -> &RouteConfig {
        self.config
            .route
            .as_ref()
            .unwrap_or_else(|| unreachable!("route checked at load"))
    }

    /// The named time intervals routes refer to: `time_intervals` and the
    /// deprecated `mute_time_intervals` share one namespace (names are
    /// unique across both).
    pub fn time_intervals(&self) -> crate::notify::TimeIntervals {
        std::sync::Arc::new(
            self.config
                .time_intervals
                .iter()
                .chain(&self.config.mute_time_intervals)
                .map(|ti| (ti.name.clone(), ti.clone()))
                .collect(),
        )
    }

    /// The config re-serialised with secrets hidden, as `GET /api/v2/status`
    /// shows it; `amtool` parses this text with Alertmanager's strict loader.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.config).unwrap_or_default()
    }

    /// `alertmanager_config_hash`: Alertmanager hashes the file's bytes with
    /// MD5 and exposes the first 8 bytes as a float; Herald uses the first 8
    /// bytes of SHA-256, which only needs to change when the file does.
    pub fn hash(&self) -> f64 {
        use sha2::Digest;
        let d = sha2::Sha256::digest(self.original.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        (u64::from_be_bytes(b) >> 11) as f64
    }
}

impl Config {
    pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut loaded = Self::load(&text).map_err(|e| match e {
            ConfigError::Yaml(m) => {
                ConfigError::Yaml(m.replace("<input>", &path.display().to_string()))
            }
            other => other,
        })?;
        // Template globs are relative to the config file, as in Alertmanager.
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some(er) = &mut loaded.config.event_recorder {
            er.check(dir)?;
        }
        for t in &mut loaded.config.templates {
            if Path::new(t.as_str()).is_relative() {
                *t = dir.join(&*t).to_string_lossy().into_owned();
            }
        }
        Ok(loaded)
    }

    pub fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        let mut config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                // The parser's hint about its own options means nothing to a user.
                ConfigError::Yaml(
                    e.to_string()
                        .replace(", set DuplicateKeyPolicy in Options if acceptable", ""),
                )
            })?
        };
        config.check()?;
        Ok(LoadedConfig {
            config,
            original: text.to_string(),
        })
    }

    /// Alertmanager's `Config.UnmarshalYAML` and `Load` rules, in its order.
    fn check(&mut self) -> Result<(), ConfigError> {
        // These blocks' rules run while yaml.v2 decodes them in Alertmanager,
        // so before the whole file's own.
        if let Some(t) = &mut self.tracing {
            t.check()?;
        }
        if let Some(er) = &mut self.event_recorder {
            er.check(Path::new(""))?;
        }
        let global = self.global.get_or_insert_with(GlobalConfig::default);
        global.check()?;
        let global = global.clone();

        let mut names = HashSet::new();
        for (i, rcv) in self.receivers.iter_mut().enumerate() {
            let field = format!("receivers[{i}]");
            if rcv.name.is_empty() {
                return Err(invalid(field, "missing name in receiver"));
            }
            if let Some(v) = rcv.labels.as_ref().and_then(|l| l.get("name")) {
                if *v != rcv.name {
                    return Err(invalid(
                        field,
                        format!(
                            "receiver label \"name\" must match receiver name {:?}, got {v:?}",
                            rcv.name
                        ),
                    ));
                }
            }
            if !names.insert(rcv.name.clone()) {
                return Err(invalid(
                    field,
                    format!("notification config name {:?} is not unique", rcv.name),
                ));
            }
            rcv.apply_global(&global, &field)?;
        }

        let mut intervals = HashSet::new();
        for (list, what) in [
            (&self.mute_time_intervals, "mute time interval"),
            (&self.time_intervals, "time interval"),
        ] {
            for (i, ti) in list.iter().enumerate() {
                let key = if what == "mute time interval" {
                    "mute_time_intervals"
                } else {
                    "time_intervals"
                };
                if ti.name.is_empty() {
                    return Err(invalid(
                        format!("{key}[{i}]"),
                        format!("missing name in {what}"),
                    ));
                }
                if !intervals.insert(ti.name.clone()) {
                    return Err(invalid(
                        format!("{key}[{i}]"),
                        format!("{what} {:?} is not unique", ti.name),
                    ));
                }
            }
        }

        for (i, rule) in self.inhibit_rules.iter().enumerate() {
            check_inhibit_rule(rule).map_err(|m| invalid(format!("inhibit_rules[{i}]"), m))?;
        }

        let route = self
            .route
            .as_ref()
            .ok_or_else(|| invalid("route", "no route provided in config"))?;
        if route.receiver.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(
                "route.receiver",
                "root route must specify a default receiver",
            ));
        }
        if route.has_matchers() {
            return Err(invalid("route", "root route must not have any matchers"));
        }
        if route
            .mute_time_intervals
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(invalid(
                "route.mute_time_intervals",
                "root route must not have any mute time intervals",
            ));
        }
        if route
            .active_time_intervals
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(invalid(
                "route.active_time_intervals",
                "root route must not have any active time intervals",
            ));
        }
        if route.continue_matching {
            return Err(invalid(
                "route.continue",
                "cannot have continue in root route",
            ));
        }
        check_route(route, "route", &names, &intervals)?;
        Ok(())
    }
}

/// `match`/`match_re` keys: classic names in every mode, as in Go.
fn check_label_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    for k in names {
        if !is_valid_classic_label_name(k) {
            return Err(format!("invalid label name {k:?}"));
        }
    }
    Ok(())
}

fn check_inhibit_rule(r: &InhibitRule) -> Result<(), String> {
    check_label_names(r.source_match.iter().flat_map(|m| m.keys()))?;
    check_label_names(r.source_match_re.iter().flat_map(|m| m.keys()))?;
    check_label_names(r.target_match.iter().flat_map(|m| m.keys()))?;
    check_label_names(r.target_match_re.iter().flat_map(|m| m.keys()))?;
    for l in r.equal.iter().flatten() {
        if !is_valid_label_name(l) {
            return Err(format!("invalid label name {l:?} in equal list"));
        }
    }
    Ok(())
}

/// Route label names as `group_by` names are checked; values must parse as
/// templates, so a typo fails the load rather than every render (where
/// Alertmanager would log it and drop the label).
fn check_route_labels(labels: Option<&BTreeMap<String, String>>) -> Result<(), String> {
    let Some(labels) = labels.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let templates = crate::template::Templates::alertmanager();
    for (k, v) in labels {
        if !is_valid_label_name(k) {
            return Err(format!("invalid label name {k:?} in route labels"));
        }
        templates
            .check_text(v)
            .map_err(|e| format!("route label {k:?}: {e}"))?;
    }
    Ok(())
}

/// Per-route rules (`Route.UnmarshalYAML`) plus the cross-references
/// (`checkReceiver`, `checkTimeInterval`), walking the tree once.
fn check_route(
    r: &RouteConfig,
    field: &str,
    receivers: &HashSet<String>,
    intervals: &HashSet<String>,
) -> Result<(), ConfigError> {
    check_label_names(r.match_eq.iter().flat_map(|m| m.keys()))
        .map_err(|m| invalid(format!("{field}.match"), m))?;
    check_label_names(r.match_re.iter().flat_map(|m| m.keys()))
        .map_err(|m| invalid(format!("{field}.match_re"), m))?;
    check_route_labels(r.labels.as_ref()).map_err(|m| invalid(format!("{field}.labels"), m))?;
    if let Some(group_by) = &r.group_by {
        let mut seen = HashSet::new();
        for l in group_by {
            if l == "..." {
                if group_by.len() > 1 {
                    return Err(invalid(
                        format!("{field}.group_by"),
                        "cannot have wildcard group_by (`...`) and other other labels at the same time",
                    ));
                }
                continue;
            }
            if !is_valid_label_name(l) {
                return Err(invalid(
                    format!("{field}.group_by"),
                    format!("invalid label name {l:?} in group_by list"),
                ));
            }
            if !seen.insert(l) {
                return Err(invalid(
                    format!("{field}.group_by"),
                    format!("duplicated label {l:?} in group_by"),
                ));
            }
        }
    }
    if r.group_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(invalid(
            format!("{field}.group_interval"),
            "group_interval cannot be zero",
        ));
    }
    if r.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(invalid(
            format!("{field}.repeat_interval"),
            "repeat_interval cannot be zero",
        ));
    }
    if let Some(rcv) = r.receiver.as_deref().filter(|s| !s.is_empty()) {
        if !receivers.contains(rcv) {
            return Err(invalid(
                format!("{field}.receiver"),
                format!("undefined receiver {rcv:?} used in route"),
            ));
        }
    }
    for (key, list) in [
        ("mute_time_intervals", &r.mute_time_intervals),
        ("active_time_intervals", &r.active_time_intervals),
    ] {
        for ti in list.iter().flatten() {
            if !intervals.contains(ti) {
                return Err(invalid(
                    format!("{field}.{key}"),
                    format!("undefined time interval {ti:?} used in route"),
                ));
            }
        }
    }
    for (i, child) in r.routes.iter().flatten().enumerate() {
        check_route(child, &format!("{field}.routes[{i}]"), receivers, intervals)?;
    }
    Ok(())
}

impl RouteConfig {
    /// This route and all below it, depth first.
    pub fn walk_config(&self) -> Box<dyn Iterator<Item = &RouteConfig> + '_> {
        Box::new(
            std::iter::once(self).chain(self.routes.iter().flatten().flat_map(|r| r.walk_config())),
        )
    }
}

#[cfg(test)]
mod tests;
