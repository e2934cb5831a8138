//! `jira_configs`: the Jira REST API base (`api_url`, or `global.jira_api_url`),
//! the project and issue type, and the issue's templated fields, with
//! Alertmanager's defaults (`notify/jira/config.go`, unchanged in 0.34).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig};
use crate::duration::PromDuration;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `auto`, `cloud` or `datacenter`: which search endpoint is used.
    #[serde(default = "d_api_type")]
    pub api_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(default = "d_summary", deserialize_with = "summary_field")]
    pub summary: JiraField,
    #[serde(default = "d_description", deserialize_with = "description_field")]
    pub description: JiraField,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<String>,
    #[serde(default = "d_priority", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issue_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reopen_transition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolve_transition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wont_fix_resolution: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopen_duration: PromDuration,
    /// Any further issue fields (custom fields), sent as given with every
    /// string rendered as a template.
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// A field that is a template and may be left alone when an existing issue
/// is updated (0.30): written either as the template itself or as
/// `{template, enable_update}`.
#[derive(Clone, Debug, Serialize)]
pub struct JiraField {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_update: Option<bool>,
}

impl JiraField {
    /// Whether an update (PUT) of an existing issue sends this field.
    pub fn updates(&self) -> bool {
        self.enable_update.unwrap_or(true)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldObject {
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    enable_update: Option<bool>,
}

/// Either form of a field; a visitor rather than an untagged enum, so a
/// wrong key in the object form is named in the error.
struct FieldVisitor(JiraField);

impl<'de> serde::de::Visitor<'de> for FieldVisitor {
    type Value = JiraField;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a template or a map with template and enable_update")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JiraField, E> {
        Ok(JiraField {
            template: v.to_string(),
            enable_update: None,
        })
    }

    /// A scalar that is not a string is its text, as for the other
    /// template keys (`summary: 5`).
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JiraField, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JiraField, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JiraField, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<JiraField, E> {
        self.visit_str(&v.to_string())
    }

    /// Null is an empty field, as Go decodes it.
    fn visit_unit<E: serde::de::Error>(self) -> Result<JiraField, E> {
        self.visit_str("")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<JiraField, E> {
        self.visit_str("")
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JiraField, D::Error> {
        d.deserialize_any(self)
    }

    /// The object form keeps the default template when it names none, as
    /// Go decodes it over the defaults.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<JiraField, A::Error> {
        let o = FieldObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(JiraField {
            template: o.template.unwrap_or(self.0.template),
            enable_update: o.enable_update,
        })
    }
}

fn field_with_default<'de, D: Deserializer<'de>>(
    d: D,
    default: JiraField,
) -> Result<JiraField, D::Error> {
    d.deserialize_any(FieldVisitor(default))
}

fn summary_field<'de, D: Deserializer<'de>>(d: D) -> Result<JiraField, D::Error> {
    field_with_default(d, d_summary())
}

fn description_field<'de, D: Deserializer<'de>>(d: D) -> Result<JiraField, D::Error> {
    field_with_default(d, d_description())
}

fn d_api_type() -> String {
    "auto".into()
}
fn d_summary() -> JiraField {
    JiraField {
        template: r#"{{ template "jira.default.summary" . }}"#.into(),
        enable_update: None,
    }
}
fn d_description() -> JiraField {
    JiraField {
        template: r#"{{ template "jira.default.description" . }}"#.into(),
        enable_update: None,
    }
}
fn d_priority() -> String {
    r#"{{ template "jira.default.priority" . }}"#.into()
}
fn is_zero(d: &PromDuration) -> bool {
    d.0.is_zero()
}

impl IntegrationConfig for JiraConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Go's `JiraConfig.UnmarshalYAML` checks, then the global defaults of
    /// `Config.UnmarshalYAML`.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if self.project.is_empty() {
            return Err(invalid(f, "missing project in jira_config"));
        }
        if self.issue_type.is_empty() {
            return Err(invalid(f, "missing issue_type in jira_config"));
        }
        if !matches!(self.api_type.as_str(), "auto" | "cloud" | "datacenter") {
            return Err(invalid(
                f,
                "unknown api_type on jira_config, must be auto, cloud or datacenter",
            ));
        }
        if let Some(u) = &self.api_url {
            check_api_url(u).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        if self.api_url.is_none() {
            self.api_url = g.jira_api_url.clone();
        }
        if self.api_url.is_none() {
            return Err(invalid(f, "no global Jira Cloud URL set"));
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("project", self.project.as_str()),
            ("summary", &self.summary.template),
            ("description", &self.description.template),
            ("priority", &self.priority),
            ("issue_type", &self.issue_type),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text))
        .collect();
        for (i, l) in self.labels.iter().enumerate() {
            texts.push((format!("labels[{i}]"), l));
        }
        for (k, v) in &self.fields {
            field_texts(v, &format!("fields.{k}"), &mut texts);
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Jira::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

/// Go's `ParseURL` for `api_url` and `global.jira_api_url`, in its words.
pub(crate) fn check_api_url(u: &str) -> Result<(), String> {
    let scheme = u.split_once(':').map_or("", |(s, _)| s);
    let scheme = if scheme.contains('/') { "" } else { scheme };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    let parsed = url::Url::parse(u).map_err(|e| format!("parse {u:?}: {e}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("missing host for URL".into());
    }
    Ok(())
}

/// The strings of a custom field that are rendered (nested map keys too,
/// not the field's own name), with their paths.
fn field_texts<'a>(v: &'a serde_json::Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        serde_json::Value::String(s) => out.push((at.to_string(), s)),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                field_texts(item, &format!("{at}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                let path = format!("{at}.{k}");
                out.push((path.clone(), k));
                field_texts(item, &path, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> JiraConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn summary_and_description_take_both_forms() {
        let c = parse("project: OPS\nissue_type: Bug\nsummary: 'S {{ .Status }}'\n");
        assert_eq!(c.summary.template, "S {{ .Status }}");
        assert!(c.summary.updates());
        assert_eq!(c.description.template, d_description().template);
        let c = parse(
            "project: OPS\nissue_type: Bug\nsummary: {enable_update: false}\ndescription: {template: D, enable_update: true}\n",
        );
        // The object form without a template keeps the default one.
        assert_eq!(c.summary.template, d_summary().template);
        assert!(!c.summary.updates());
        assert_eq!(c.description.template, "D");
        assert!(c.description.updates());
        assert_eq!(c.priority, d_priority());
        assert_eq!(c.api_type, "auto");
        assert!(c.send_resolved);
    }

    #[test]
    fn go_checks_and_the_global_url() {
        let g = GlobalConfig::default();
        let e = parse("issue_type: Bug\n")
            .apply_global(&g, "r")
            .unwrap_err();
        assert_eq!(e.message, "missing project in jira_config");
        let e = parse("project: OPS\n").apply_global(&g, "r").unwrap_err();
        assert_eq!(e.message, "missing issue_type in jira_config");
        let e = parse("project: OPS\nissue_type: Bug\napi_type: server\n")
            .apply_global(&g, "r")
            .unwrap_err();
        assert_eq!(
            e.message,
            "unknown api_type on jira_config, must be auto, cloud or datacenter"
        );
        let e = parse("project: OPS\nissue_type: Bug\n")
            .apply_global(&g, "r")
            .unwrap_err();
        assert_eq!(e.message, "no global Jira Cloud URL set");
        let g = GlobalConfig {
            jira_api_url: Some("https://x.atlassian.net/rest/api/2".into()),
            ..GlobalConfig::default()
        };
        let mut c = parse("project: OPS\nissue_type: Bug\n");
        c.apply_global(&g, "r").unwrap();
        assert_eq!(
            c.api_url.as_deref(),
            Some("https://x.atlassian.net/rest/api/2")
        );
    }

    #[test]
    fn bad_fields_and_urls_are_named() {
        let e = serde_saphyr::from_str::<JiraConfig>("summary: {template: x, update: false}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `update`"), "{e}");
        let c = parse("project: P\nissue_type: B\nsummary: null\ndescription: 5\n");
        assert_eq!(c.summary.template, "");
        assert_eq!(c.description.template, "5");
        assert_eq!(
            check_api_url("ftp://j/x").unwrap_err(),
            "unsupported scheme \"ftp\" for URL"
        );
        assert_eq!(
            check_api_url("j.example.com/rest").unwrap_err(),
            "unsupported scheme \"\" for URL"
        );
        assert!(check_api_url("https://j.example.com/rest/api/2").is_ok());
    }

    #[test]
    fn every_template_is_listed() {
        let c = parse(
            "project: '{{ .CommonLabels.p }}'\nissue_type: Bug\nlabels: ['{{ .Status }}']\nfields:\n  customfield_1: {'{{ .K }}': ['{{ .V }}', 3]}\n",
        );
        let names: Vec<String> = c.template_texts().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "project",
                "summary",
                "description",
                "priority",
                "issue_type",
                "labels[0]",
                "fields.customfield_1.{{ .K }}",
                "fields.customfield_1.{{ .K }}[0]"
            ]
        );
    }
}
