//! `opsgenie_configs`: the API key (inline, in a file or from `global:`),
//! the API URL and the alert fields, each a template, with Alertmanager's
//! defaults and load-time checks (`notify/opsgenie/config.go`,
//! `config/config.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    /// Not a secret in Alertmanager either: shown in clear in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default = "d_message", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default = "d_description", skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "d_source", skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub responders: Vec<OpsgenieResponder>,
    /// Comma-separated, like `tags`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actions: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority: String,
    /// Also rewrite the message and description of an alert Opsgenie
    /// already has under the group's alias (its create call keeps them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update_alerts: bool,
}

/// Who Opsgenie should notify; one of `id`, `name`, `username` names it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponder {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// `team`, `teams` (a comma-separated list of team names), `user`,
    /// `escalation`, `schedule`, or a template giving one of them.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

impl OpsgenieResponder {
    /// Go's `%v` of the responder struct, which its errors show.
    fn go_value(&self) -> String {
        format!(
            "{{{} {} {} {}}}",
            self.id, self.name, self.username, self.kind
        )
    }
}

fn d_message() -> String {
    "{{ template \"opsgenie.default.message\" . }}".into()
}
fn d_description() -> String {
    "{{ template \"opsgenie.default.description\" . }}".into()
}
fn d_source() -> String {
    "{{ template \"opsgenie.default.source\" . }}".into()
}

const VALID_TYPES: [&str; 5] = ["team", "teams", "user", "escalation", "schedule"];

/// Go's `strings.Contains(s, "{{")` test, then the parse that makes a
/// templated value valid.
fn templated_type(kind: &str) -> Result<bool, String> {
    if !kind.contains("{{") {
        return Ok(false);
    }
    crate::template::Templates::with_builtins()
        .check_text(kind)
        .map(|()| true)
        .map_err(|e| e.to_string())
}

impl IntegrationConfig for OpsgenieConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `OpsGenieConfig.UnmarshalYAML` on what the user wrote, then the
    /// `global:` defaults as `Config.UnmarshalYAML` copies them.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let key_set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.expose().is_empty());
        if key_set(&self.api_key) && set(&self.api_key_file) {
            return Err(invalid(
                f,
                "at most one of api_key & api_key_file must be configured",
            ));
        }
        for (i, r) in self.responders.iter().enumerate() {
            let p = format!("{f}.responders[{i}]");
            if r.id.is_empty() && r.username.is_empty() && r.name.is_empty() {
                return Err(invalid(
                    p,
                    format!(
                        "opsGenieConfig responder {} has to have at least one of id, username or name specified",
                        r.go_value()
                    ),
                ));
            }
            // Go lower-cases a copy to check it: the type is sent as written.
            match templated_type(&r.kind) {
                Err(e) => {
                    return Err(invalid(
                        p,
                        format!(
                        "opsGenieConfig responder {} type contains invalid template syntax: {e}",
                        r.go_value()
                    ),
                    ))
                }
                Ok(false) if !VALID_TYPES.contains(&r.kind.to_lowercase().as_str()) => {
                    let mut shown = r.clone();
                    shown.kind = r.kind.to_lowercase();
                    return Err(invalid(
                        p,
                        format!(
                            "opsGenieConfig responder {} type does not match valid options ^(team|teams|user|escalation|schedule)$",
                            shown.go_value()
                        ),
                    ));
                }
                Ok(_) => {}
            }
        }
        if let Some(u) = &self.api_url {
            check_http_url(u).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        let url = match self.api_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None if !g.opsgenie_api_url.is_empty() => g.opsgenie_api_url.clone(),
            None => return Err(invalid(f, "no global OpsGenie URL set")),
        };
        // The API paths are appended to the URL's path: it must end in `/`.
        let mut parsed =
            url::Url::parse(&url).map_err(|e| invalid(format!("{f}.api_url"), e.to_string()))?;
        if !parsed.path().ends_with('/') {
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        self.api_url = Some(parsed.to_string());
        if !key_set(&self.api_key) {
            self.api_key = g.opsgenie_api_key.clone();
        }
        if !set(&self.api_key_file) {
            self.api_key_file = g.opsgenie_api_key_file.clone();
        }
        if !key_set(&self.api_key) && !set(&self.api_key_file) {
            return Err(invalid(
                f,
                "no global OpsGenie API Key set either inline or in a file",
            ));
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("message", &self.message),
            ("description", &self.description),
            ("source", &self.source),
            ("entity", &self.entity),
            ("actions", &self.actions),
            ("tags", &self.tags),
            ("note", &self.note),
            ("priority", &self.priority),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        for (k, v) in &self.details {
            texts.push((format!("details.{k}"), v));
        }
        for (i, r) in self.responders.iter().enumerate() {
            for (name, text) in [
                ("id", &r.id),
                ("name", &r.name),
                ("username", &r.username),
                ("type", &r.kind),
            ] {
                texts.push((format!("responders[{i}].{name}"), text));
            }
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Opsgenie::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, global: &GlobalConfig) -> Result<OpsgenieConfig, FieldError> {
        let mut c: OpsgenieConfig = serde_saphyr::from_str(yaml).unwrap();
        c.apply_global(global, "og").map(|()| c)
    }

    #[test]
    fn global_key_and_url_fill_in_with_a_trailing_slash() {
        let mut g = GlobalConfig::default();
        let e = load("{}", &g).unwrap_err();
        assert_eq!(
            e.message,
            "no global OpsGenie API Key set either inline or in a file"
        );
        g.opsgenie_api_key = Some(Secret::new("k"));
        g.opsgenie_api_url = "https://eu.opsgenie.test/api".into();
        let c = load("{}", &g).unwrap();
        assert_eq!(c.api_url.as_deref(), Some("https://eu.opsgenie.test/api/"));
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("k"));
        let c = load("api_key_file: /k\napi_url: http://og.test", &g).unwrap();
        assert_eq!(c.api_url.as_deref(), Some("http://og.test/"));
        // Go's cmp.Or fills each key on its own: the global inline key is
        // copied beside the config's file, and the inline key is the one
        // used.
        assert_eq!(c.api_key_file.as_deref(), Some("/k"));
        assert!(c.send_resolved);
    }

    #[test]
    fn responders_are_checked_like_go() {
        let g = GlobalConfig {
            opsgenie_api_key: Some(Secret::new("k")),
            ..GlobalConfig::default()
        };
        let e = load("responders: [{type: team}]", &g).unwrap_err();
        assert_eq!(e.field, "og.responders[0]");
        assert_eq!(
            e.message,
            "opsGenieConfig responder {   team} has to have at least one of id, username or name specified"
        );
        let e = load("responders: [{name: n, type: Group}]", &g).unwrap_err();
        assert_eq!(
            e.message,
            "opsGenieConfig responder { n  group} type does not match valid options ^(team|teams|user|escalation|schedule)$"
        );
        assert!(load("responders: [{name: n, type: '{{ if }'}]", &g).is_err());
        let c = load(
            "responders: [{name: n, type: Team}, {id: i, type: '{{ .CommonLabels.t }}'}]",
            &g,
        )
        .unwrap();
        assert_eq!(c.responders[0].kind, "Team", "sent as written");
        let e = load("api_key: a\napi_key_file: b", &g).unwrap_err();
        assert_eq!(
            e.message,
            "at most one of api_key & api_key_file must be configured"
        );
    }
}
