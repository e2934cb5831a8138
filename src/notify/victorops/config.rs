//! `victorops_configs`: the REST endpoint's API key (inline, in a file or
//! from `global:`), a routing key and the event's templated fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VictorOpsConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// `global.victorops_api_url` when unset; always ends in `/`, so that
    /// the key and routing key are appended as path segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default = "d_message_type")]
    pub message_type: String,
    #[serde(default = "d_state_message")]
    pub state_message: String,
    #[serde(default = "d_entity_display_name")]
    pub entity_display_name: String,
    #[serde(default = "d_monitoring_tool")]
    pub monitoring_tool: String,
    /// Extra fields of the event, each a template.
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub custom_fields: BTreeMap<String, String>,
}

fn d_message_type() -> String {
    "CRITICAL".into()
}
fn d_state_message() -> String {
    "{{ template \"victorops.default.state_message\" . }}".into()
}
fn d_entity_display_name() -> String {
    "{{ template \"victorops.default.entity_display_name\" . }}".into()
}
fn d_monitoring_tool() -> String {
    "{{ template \"victorops.default.monitoring_tool\" . }}".into()
}

/// The event's own fields, which a custom field may not replace.
const RESERVED_FIELDS: [&str; 7] = [
    "routing_key",
    "message_type",
    "state_message",
    "entity_display_name",
    "monitoring_tool",
    "entity_id",
    "entity_state",
];

fn is_set(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

fn is_set_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl IntegrationConfig for VictorOpsConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Go's `VictorOpsConfig.UnmarshalYAML` checks, then the `global:`
    /// URL and key with the trailing `/` Go adds.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if self.routing_key.is_empty() {
            return Err(invalid(f, "missing Routing key in VictorOps config"));
        }
        if is_set(&self.api_key) && is_set_str(&self.api_key_file) {
            return Err(invalid(
                f,
                "at most one of api_key & api_key_file must be configured",
            ));
        }
        if let Some(name) = RESERVED_FIELDS
            .iter()
            .find(|n| self.custom_fields.contains_key(**n))
        {
            return Err(invalid(
                format!("{f}.custom_fields"),
                format!("victorOps config contains custom field {name} which cannot be used as it conflicts with the fixed/static fields"),
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        let raw = match self.api_url.take() {
            Some(u) => u,
            None if !g.victorops_api_url.is_empty() => g.victorops_api_url.clone(),
            None => return Err(invalid(f, "no global VictorOps URL set")),
        };
        check_http_url(&raw).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        self.api_url = Some(with_trailing_slash(&raw));
        // Each from `global:` on its own, as Go's `cmp.Or` does: a global
        // inline key beside a local file wins at send time, in both.
        if !is_set(&self.api_key) {
            self.api_key = g
                .victorops_api_key
                .clone()
                .filter(|k| !k.expose().is_empty());
        }
        if !is_set_str(&self.api_key_file) {
            self.api_key_file = g.victorops_api_key_file.clone().filter(|f| !f.is_empty());
        }
        if self.api_key.is_none() && self.api_key_file.is_none() {
            return Err(invalid(f, "no global VictorOps API Key set"));
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("routing_key", &self.routing_key),
            ("message_type", &self.message_type),
            ("state_message", &self.state_message),
            ("entity_display_name", &self.entity_display_name),
            ("monitoring_tool", &self.monitoring_tool),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        for (k, v) in &self.custom_fields {
            texts.push((format!("custom_fields.{k}"), v));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::VictorOps::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

/// Go appends `/` to the URL's path (not to its query or fragment) when
/// the path does not end in one.
fn with_trailing_slash(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if !u.path().ends_with('/') => {
            let path = format!("{}/", u.path());
            u.set_path(&path);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_gets_one_trailing_slash() {
        assert_eq!(
            with_trailing_slash("http://vo.test/alert?x=1"),
            "http://vo.test/alert/?x=1"
        );
        assert_eq!(
            with_trailing_slash("http://vo.test/alert/"),
            "http://vo.test/alert/"
        );
        assert_eq!(with_trailing_slash("http://vo.test"), "http://vo.test/");
    }
}
