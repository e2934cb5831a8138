//! `slack_configs`: an incoming-webhook URL (or a Slack app's bot token
//! posting to `chat.postMessage`) and the attachment fields, each a
//! template, with Alertmanager's defaults.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, FieldError, HttpClientConfig, Secret};
use crate::duration::PromDuration;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    /// Slack-app mode (newer than 0.25, hidden from status unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default = "d_username")]
    pub username: String,
    #[serde(default = "d_color")]
    pub color: String,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_title_link")]
    pub title_link: String,
    #[serde(default = "d_pretext")]
    pub pretext: String,
    #[serde(default = "d_text")]
    pub text: String,
    /// The message's top-level `text` (0.31), beside the attachment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message_text: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default = "d_footer")]
    pub footer: String,
    #[serde(default = "d_fallback")]
    pub fallback: String,
    #[serde(default = "d_callback_id")]
    pub callback_id: String,
    #[serde(default = "d_icon_emoji")]
    pub icon_emoji: String,
    #[serde(default = "d_icon_url")]
    pub icon_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(default)]
    pub link_names: bool,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mrkdwn_in: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub actions: Vec<SlackAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<PromDuration>,
    /// Edit the group's last message (`chat.update`) instead of posting a
    /// new one (0.32).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub update_message: bool,
}

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"slack.default.{name}\" . }}}}")
}
fn d_username() -> String {
    tmpl("username")
}
fn d_color() -> String {
    tmpl("color")
}
fn d_title() -> String {
    tmpl("title")
}
fn d_title_link() -> String {
    tmpl("titlelink")
}
fn d_pretext() -> String {
    tmpl("pretext")
}
fn d_text() -> String {
    tmpl("text")
}
fn d_footer() -> String {
    tmpl("footer")
}
fn d_fallback() -> String {
    tmpl("fallback")
}
fn d_callback_id() -> String {
    tmpl("callbackid")
}
fn d_icon_emoji() -> String {
    tmpl("iconemoji")
}
fn d_icon_url() -> String {
    tmpl("iconurl")
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(rename = "confirm", default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirm>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirm {
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

/// Slack's API endpoint for bot tokens.
pub const DEFAULT_SLACK_APP_URL: &str = "https://slack.com/api/chat.postMessage";

impl IntegrationConfig for SlackConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// Alertmanager's field checks and the `global.slack_*` defaults.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        for (i, field) in self.fields.iter().enumerate() {
            let p = format!("{f}.fields[{i}]");
            if field.title.is_empty() {
                return Err(invalid(p, "missing title in Slack field configuration"));
            }
            if field.value.is_empty() {
                return Err(invalid(p, "missing value in Slack field configuration"));
            }
        }
        for (i, a) in self.actions.iter_mut().enumerate() {
            let p = format!("{f}.actions[{i}]");
            if a.kind.is_empty() {
                return Err(invalid(p, "missing type in Slack action configuration"));
            }
            if a.text.is_empty() {
                return Err(invalid(p, "missing text in Slack action configuration"));
            }
            // A link button or a message button, never both.
            if !a.url.is_empty() {
                a.name.clear();
                a.value.clear();
                a.confirm = None;
            } else if a.name.is_empty() {
                return Err(invalid(
                    p,
                    "missing name or url in Slack action configuration",
                ));
            }
            if a.confirm.as_ref().is_some_and(|c| c.text.is_empty()) {
                return Err(invalid(
                    format!("{p}.confirm"),
                    "missing text in Slack confirmation configuration",
                ));
            }
        }
        if self.api_url.is_some() && self.api_url_file.is_some() {
            return Err(invalid(
                f,
                "at most one of api_url & api_url_file must be configured",
            ));
        }
        if self.app_token.is_some() && self.app_token_file.is_some() {
            return Err(invalid(
                f,
                "at most one of app_token & app_token_file must be configured",
            ));
        }
        // Checked before the global defaults, on what the user wrote, as
        // Alertmanager's SlackConfig.UnmarshalYAML does. A Slack app (where
        // Alertmanager crashes) may update too: its app_url is the post URL.
        if self.update_message
            && self.app_token.is_none()
            && self.app_token_file.is_none()
            && self.api_url.as_ref().map(|u| u.expose()) != Some(DEFAULT_SLACK_APP_URL)
        {
            return Err(invalid(
                f,
                "update_message can only be used with bot tokens. api_url must be set to https://slack.com/api/chat.postMessage",
            ));
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        let webhook = self.api_url.is_some() || self.api_url_file.is_some();
        let app = self.app_token.is_some() || self.app_token_file.is_some();
        if webhook && app {
            return Err(invalid(
                f,
                "api_url/api_url_file (incoming webhook) and app_token/app_token_file (Slack app) are exclusive",
            ));
        }
        if !webhook && !app {
            if g.slack_api_url.is_some() || g.slack_api_url_file.is_some() {
                self.api_url = g.slack_api_url.clone();
                self.api_url_file = g.slack_api_url_file.clone();
            } else if g.slack_app_token.is_some() || g.slack_app_token_file.is_some() {
                self.app_token = g.slack_app_token.clone();
                self.app_token_file = g.slack_app_token_file.clone();
            } else {
                return Err(invalid(
                    f,
                    "no global Slack API URL set either inline or in a file",
                ));
            }
        }
        if self.app_token.is_some() || self.app_token_file.is_some() {
            if self.app_url.is_none() {
                self.app_url = Some(
                    g.slack_app_url
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SLACK_APP_URL.into()),
                );
            }
            if let Some(u) = &self.app_url {
                check_http_url(u).map_err(|m| invalid(format!("{f}.app_url"), m))?;
            }
        }
        if let Some(u) = &self.api_url {
            check_http_url(u.expose()).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("channel", &self.channel),
            ("username", &self.username),
            ("color", &self.color),
            ("title", &self.title),
            ("title_link", &self.title_link),
            ("pretext", &self.pretext),
            ("text", &self.text),
            ("message_text", &self.message_text),
            ("footer", &self.footer),
            ("fallback", &self.fallback),
            ("callback_id", &self.callback_id),
            ("icon_emoji", &self.icon_emoji),
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
            for (name, text) in [
                ("type", &a.kind),
                ("text", &a.text),
                ("url", &a.url),
                ("style", &a.style),
                ("name", &a.name),
                ("value", &a.value),
            ] {
                texts.push((format!("actions[{j}].{name}"), text));
            }
            if let Some(c) = &a.confirm {
                for (name, text) in [
                    ("text", &c.text),
                    ("title", &c.title),
                    ("ok_text", &c.ok_text),
                    ("dismiss_text", &c.dismiss_text),
                ] {
                    texts.push((format!("actions[{j}].confirm.{name}"), text));
                }
            }
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Slack::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
