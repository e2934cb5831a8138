//! `pagerduty_configs`: an Events API v2 routing key or a v1 service key
//! (inline or in a file), the event's templated fields and `details`, with
//! Alertmanager's defaults.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::duration::PromDuration;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    /// The Events API v2 endpoint; `global.pagerduty_url` when unset. The
    /// v1 API has a fixed URL in Alertmanager, and so in Herald.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "d_client")]
    pub client: String,
    #[serde(default = "d_client_url")]
    pub client_url: String,
    #[serde(default = "d_description")]
    pub description: String,
    /// Any YAML under each key (0.30); every string in it, nested map keys
    /// included, is a template. The four default keys are added to what the
    /// config names.
    #[serde(default, deserialize_with = "crate::commoncfg::null_default")]
    pub details: BTreeMap<String, Json>,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<PagerdutyImage>,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub links: Vec<PagerdutyLink>,
    /// Defaults to `client` (what the config says there), as in Go.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// `error` when left empty (v2 only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Bounds one attempt (0.30); none when unset or zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub src: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub href: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub href: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

fn d_client() -> String {
    "{{ template \"pagerduty.default.client\" . }}".into()
}
fn d_client_url() -> String {
    "{{ template \"pagerduty.default.clientURL\" . }}".into()
}
fn d_description() -> String {
    // Go's default has no space before the closing braces.
    "{{ template \"pagerduty.default.description\" .}}".into()
}

/// Alertmanager's `DefaultPagerdutyDetails`: filled in for every key the
/// config's `details` does not name.
const DEFAULT_DETAILS: [(&str, &str); 4] = [
    ("firing", "{{ .Alerts.Firing | toJson }}"),
    ("resolved", "{{ .Alerts.Resolved | toJson }}"),
    ("num_firing", "{{ .Alerts.Firing | len }}"),
    ("num_resolved", "{{ .Alerts.Resolved | len }}"),
];

fn is_set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

fn is_set_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl PagerdutyConfig {
    /// Events API v1 (`service_key*`) rather than v2: Go picks v1 whenever
    /// a service key is given, even beside a routing key.
    pub(crate) fn is_v1(&self) -> bool {
        is_set(&self.service_key) || is_set_str(&self.service_key_file)
    }
}

impl IntegrationConfig for PagerdutyConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Go's `PagerdutyConfig.UnmarshalYAML` checks, then the global
    /// `http_config` and `pagerduty_url`.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        let routing = is_set(&self.routing_key);
        let routing_file = is_set_str(&self.routing_key_file);
        if !routing && !routing_file && !self.is_v1() {
            return Err(invalid(
                f,
                "missing service or routing key in PagerDuty config",
            ));
        }
        if routing && routing_file {
            return Err(invalid(
                f,
                "at most one of routing_key & routing_key_file must be configured",
            ));
        }
        if is_set(&self.service_key) && is_set_str(&self.service_key_file) {
            return Err(invalid(
                f,
                "at most one of service_key & service_key_file must be configured",
            ));
        }
        if self.source.is_empty() {
            self.source = self.client.clone();
        }
        for (k, v) in DEFAULT_DETAILS {
            self.details
                .entry(k.to_string())
                .or_insert_with(|| Json::String(v.to_string()));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        if self.url.is_none() {
            if g.pagerduty_url.is_empty() {
                return Err(invalid(f, "no global PagerDuty URL set"));
            }
            self.url = Some(g.pagerduty_url.clone());
        }
        if let Some(u) = &self.url {
            check_http_url(u).map_err(|m| invalid(format!("{f}.url"), m))?;
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("client", &self.client),
            ("client_url", &self.client_url),
            ("description", &self.description),
            ("source", &self.source),
            ("severity", &self.severity),
            ("class", &self.class),
            ("component", &self.component),
            ("group", &self.group),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        for (k, v) in &self.details {
            detail_texts(v, &format!("details.{k}"), &mut texts);
        }
        for (i, im) in self.images.iter().enumerate() {
            texts.push((format!("images[{i}].src"), &im.src));
            texts.push((format!("images[{i}].alt"), &im.alt));
            texts.push((format!("images[{i}].href"), &im.href));
        }
        for (i, l) in self.links.iter().enumerate() {
            texts.push((format!("links[{i}].href"), &l.href));
            texts.push((format!("links[{i}].text"), &l.text));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Pagerduty::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

/// The templates of one `details` value: every string, and the keys of
/// nested maps (the top-level keys are sent as written).
fn detail_texts<'a>(v: &'a Json, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Json::String(s) => out.push((at.to_string(), s)),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                detail_texts(item, &format!("{at}[{i}]"), out);
            }
        }
        Json::Object(map) => {
            for (k, item) in map {
                let path = format!("{at}.{k}");
                out.push((path.clone(), k));
                detail_texts(item, &path, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<PagerdutyConfig, FieldError> {
        let mut c: PagerdutyConfig = serde_saphyr::from_str(yaml).unwrap();
        c.apply_global(&GlobalConfig::default(), "pd").map(|()| c)
    }

    #[test]
    fn default_details_fill_what_the_config_leaves_out() {
        let keys = |c: PagerdutyConfig| c.details.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(load("routing_key: x\n").unwrap()),
            ["firing", "num_firing", "num_resolved", "resolved"]
        );
        let c = load("routing_key: x\ndetails: {key1: v, firing: mine}\n").unwrap();
        assert_eq!(c.details.len(), 5);
        assert_eq!(c.details["firing"], "mine");
        assert_eq!(c.source, c.client);
        assert_eq!(
            c.url.as_deref(),
            Some("https://events.pagerduty.com/v2/enqueue")
        );
    }

    #[test]
    fn empty_keys_count_as_missing() {
        let e = load("routing_key: ''\nservice_key: ''\n").unwrap_err();
        assert_eq!(
            e.message,
            "missing service or routing key in PagerDuty config"
        );
        assert!(load("service_key: s\nrouting_key: r\n").unwrap().is_v1());
    }
}
