//! `rocketchat_configs`: the server, a personal access token and its user
//! id, and the attachment's templates, with Alertmanager's defaults.
//!
//! The keys of `fields` and `actions` are spelled as Alertmanager's YAML
//! library derives them from Go field names without tags (`imageurl`,
//! `msginchatwindow`), which is what its users write.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

/// `global.rocketchat_api_url` when unset.
pub const DEFAULT_ROCKETCHAT_API_URL: &str = "https://open.rocket.chat/";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RocketchatConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default = "d_color")]
    pub color: String,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_title_link")]
    pub title_link: String,
    #[serde(default = "d_text")]
    pub text: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<RocketchatField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "d_emoji")]
    pub emoji: String,
    #[serde(default = "d_icon_url")]
    pub icon_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    /// Accepted as Alertmanager accepts it; it changes nothing it sends.
    #[serde(default)]
    pub link_names: bool,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub actions: Vec<RocketchatAction>,
}

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"rocketchat.default.{name}\" . }}}}")
}
fn d_color() -> String {
    r#"{{ if eq .Status "firing" }}red{{ else }}green{{ end }}"#.into()
}
fn d_title() -> String {
    tmpl("title")
}
fn d_title_link() -> String {
    tmpl("titlelink")
}
fn d_text() -> String {
    tmpl("text")
}
fn d_emoji() -> String {
    tmpl("emoji")
}
fn d_icon_url() -> String {
    tmpl("iconurl")
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RocketchatField {
    /// Unset: `short_fields` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A message button. Alertmanager sends `type: button` and only `text`,
/// `url` and `msg` of what is configured; the other keys load and are
/// dropped, as there.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RocketchatAction {
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub imageurl: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iswebview: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webviewheightratio: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub msginchatwindow: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msgprocessingtype: String,
}

fn set_str(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl IntegrationConfig for RocketchatConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `RocketchatConfig.UnmarshalYAML`, then the `global.rocketchat_*`
    /// defaults as `Config.UnmarshalYAML` fills them.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if self.token.is_some() && set_str(&self.token_file) {
            return Err(invalid(
                f,
                "at most one of token & token_file must be configured",
            ));
        }
        if self.token_id.is_some() && set_str(&self.token_id_file) {
            return Err(invalid(
                f,
                "at most one of token_id & token_id_file must be configured",
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        let (url, field) = match (&self.api_url, &g.rocketchat_api_url) {
            (Some(u), _) => (u.clone(), format!("{f}.api_url")),
            (None, Some(u)) => (u.clone(), "global.rocketchat_api_url".to_string()),
            (None, None) => (DEFAULT_ROCKETCHAT_API_URL.to_string(), String::new()),
        };
        check_http_url(&url).map_err(|m| invalid(field, m))?;
        self.api_url = Some(url);
        // A credential the receiver sets, inline or in a file, is taken
        // whole; only a missing one comes from `global:`.
        if self.token_id.is_none() && !set_str(&self.token_id_file) {
            self.token_id = g.rocketchat_token_id.clone();
            self.token_id_file = g.rocketchat_token_id_file.clone();
        }
        if self.token_id.is_none() && !set_str(&self.token_id_file) {
            return Err(invalid(
                f,
                "no global Rocketchat TokenID set either inline or in a file",
            ));
        }
        if self.token.is_none() && !set_str(&self.token_file) {
            self.token = g.rocketchat_token.clone();
            self.token_file = g.rocketchat_token_file.clone();
        }
        if self.token.is_none() && !set_str(&self.token_file) {
            return Err(invalid(
                f,
                "no global Rocketchat Token set either inline or in a file",
            ));
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("channel", &self.channel),
            ("color", &self.color),
            ("title", &self.title),
            ("title_link", &self.title_link),
            ("text", &self.text),
            ("emoji", &self.emoji),
            ("icon_url", &self.icon_url),
            ("image_url", &self.image_url),
            ("thumb_url", &self.thumb_url),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        for (j, fl) in self.fields.iter().enumerate() {
            texts.push((format!("fields[{j}].title"), &fl.title));
            texts.push((format!("fields[{j}].value"), &fl.value));
        }
        for (j, a) in self.actions.iter().enumerate() {
            texts.push((format!("actions[{j}].text"), &a.text));
            texts.push((format!("actions[{j}].url"), &a.url));
            texts.push((format!("actions[{j}].msg"), &a.msg));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Rocketchat::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, global: &str) -> Result<RocketchatConfig, FieldError> {
        let mut c: RocketchatConfig = serde_saphyr::from_str(yaml).unwrap();
        let g: GlobalConfig = serde_saphyr::from_str(global).unwrap();
        c.apply_global(&g, "r").map(|()| c)
    }

    #[test]
    fn globals_fill_in_what_is_missing() {
        let c = load(
            "{token_id_file: /id}",
            "{rocketchat_token_id: gid, rocketchat_token: gt}",
        )
        .unwrap();
        assert_eq!(c.api_url.as_deref(), Some(DEFAULT_ROCKETCHAT_API_URL));
        // The receiver's own file is kept, not joined with the global id.
        assert!(c.token_id.is_none());
        assert_eq!(c.token_id_file.as_deref(), Some("/id"));
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("gt"));
        let c = load(
            "{token_id: i, token: t}",
            "{rocketchat_api_url: 'http://rc/'}",
        )
        .unwrap();
        assert_eq!(c.api_url.as_deref(), Some("http://rc/"));
    }

    #[test]
    fn go_checks_in_go_order() {
        let e = load(
            "{token: t, token_file: f, token_id: i, token_id_file: g}",
            "{}",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "at most one of token & token_file must be configured"
        );
        let e = load("{token_id: i, token_id_file: g}", "{}").unwrap_err();
        assert_eq!(
            e.message,
            "at most one of token_id & token_id_file must be configured"
        );
        let e = load("{token: t}", "{}").unwrap_err();
        assert_eq!(
            e.message,
            "no global Rocketchat TokenID set either inline or in a file"
        );
        let e = load("{token_id: i}", "{}").unwrap_err();
        assert_eq!(
            e.message,
            "no global Rocketchat Token set either inline or in a file"
        );
        assert!(load("{token_id: i, token: t, api_url: 'ftp://x/'}", "{}").is_err());
    }

    #[test]
    fn action_keys_are_go_field_names_lower_cased() {
        let c: RocketchatConfig = serde_saphyr::from_str(
            "{actions: [{type: button, text: t, url: u, imageurl: i, iswebview: true, webviewheightratio: full, msg: m, msginchatwindow: true, msgprocessingtype: sendMessage}], fields: [{title: a, value: b, short: true}]}",
        )
        .unwrap();
        assert_eq!(c.actions[0].imageurl, "i");
        assert_eq!(c.fields[0].short, Some(true));
        assert!(serde_saphyr::from_str::<RocketchatConfig>("{actions: [{image_url: i}]}").is_err());
    }
}
