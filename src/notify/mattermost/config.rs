//! `mattermost_configs`: an incoming-webhook URL (inline, in a file, or
//! `global.mattermost_webhook_url(_file)`), the message keys, and either a
//! list of attachments or the keys of the one attachment built from the
//! top level.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::msteams::check_secret_url;
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

fn is_false(b: &bool) -> bool {
    !b
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The webhook URL is the credential: shown as `<secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(default = "d_username", skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default = "d_text", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default = "d_fallback", skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(default = "d_color", skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(default = "d_title", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default = "d_title_link", skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<MattermostField>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_emoji: String,
    /// When set, the message's attachments; the top-level attachment keys
    /// (`title`, `color`, `fields`, ...) are then not used.
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachments: Vec<MattermostAttachment>,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<MattermostProps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<MattermostPriority>,
}

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"mattermost.default.{name}\" . }}}}")
}
fn d_username() -> String {
    tmpl("username")
}
fn d_color() -> String {
    tmpl("color")
}
fn d_text() -> String {
    tmpl("text")
}
fn d_title() -> String {
    tmpl("title")
}
fn d_title_link() -> String {
    tmpl("titlelink")
}
fn d_fallback() -> String {
    tmpl("fallback")
}

/// A field of an attachment; `title` and `value` are required.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostField {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// One attachment of the `attachments` list; no defaults apply to it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostAttachment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<MattermostField>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
}

/// `props`: only `card` (the text of the message's side panel) is used.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostProps {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub card: String,
}

/// Message priority (Mattermost Professional): sent only when `priority`
/// is set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostPriority {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub requested_ack: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub persistent_notifications: bool,
}

/// Go checks each field as it is read, wherever it is.
fn check_fields(fields: &[MattermostField], at: &str) -> Result<(), FieldError> {
    for (i, field) in fields.iter().enumerate() {
        let p = format!("{at}[{i}]");
        if field.title.is_empty() {
            return Err(invalid(
                p,
                "missing title in Mattermost field configuration",
            ));
        }
        if field.value.is_empty() {
            return Err(invalid(
                p,
                "missing value in Mattermost field configuration",
            ));
        }
    }
    Ok(())
}

impl IntegrationConfig for MattermostConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        check_fields(&self.fields, &format!("{f}.fields"))?;
        for (i, a) in self.attachments.iter().enumerate() {
            check_fields(&a.fields, &format!("{f}.attachments[{i}].fields"))?;
        }
        let file_set = self
            .webhook_url_file
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        if self.webhook_url.is_some() && file_set {
            return Err(invalid(
                f,
                "at most one of webhook_url & webhook_url_file must be configured",
            ));
        }
        if let Some(u) = &self.webhook_url {
            check_secret_url(u, &format!("{f}.webhook_url"))?;
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        if self.webhook_url.is_none() && !file_set {
            let global_file = g
                .mattermost_webhook_url_file
                .as_ref()
                .filter(|s| !s.is_empty());
            if g.mattermost_webhook_url.is_none() && global_file.is_none() {
                return Err(invalid(
                    f,
                    "missing webhook_url or webhook_url_file on mattermost_config",
                ));
            }
            self.webhook_url = g.mattermost_webhook_url.clone();
            self.webhook_url_file = global_file.cloned();
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        let mut texts: Vec<(String, &str)> = [
            ("channel", &self.channel),
            ("username", &self.username),
            ("text", &self.text),
            ("fallback", &self.fallback),
            ("color", &self.color),
            ("pretext", &self.pretext),
            ("author_name", &self.author_name),
            ("author_link", &self.author_link),
            ("author_icon", &self.author_icon),
            ("title", &self.title),
            ("title_link", &self.title_link),
            ("thumb_url", &self.thumb_url),
            ("footer", &self.footer),
            ("footer_icon", &self.footer_icon),
            ("image_url", &self.image_url),
            ("icon_url", &self.icon_url),
            ("icon_emoji", &self.icon_emoji),
            ("type", &self.kind),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.as_str()))
        .collect();
        push_fields(&self.fields, "fields", &mut texts);
        for (i, a) in self.attachments.iter().enumerate() {
            for (name, text) in [
                ("fallback", &a.fallback),
                ("color", &a.color),
                ("pretext", &a.pretext),
                ("text", &a.text),
                ("author_name", &a.author_name),
                ("author_link", &a.author_link),
                ("author_icon", &a.author_icon),
                ("title", &a.title),
                ("title_link", &a.title_link),
                ("thumb_url", &a.thumb_url),
                ("footer", &a.footer),
                ("footer_icon", &a.footer_icon),
                ("image_url", &a.image_url),
            ] {
                texts.push((format!("attachments[{i}].{name}"), text.as_str()));
            }
            push_fields(&a.fields, &format!("attachments[{i}].fields"), &mut texts);
        }
        if let Some(p) = &self.props {
            texts.push(("props.card".into(), p.card.as_str()));
        }
        if let Some(p) = &self.priority {
            texts.push(("priority.priority".into(), p.priority.as_str()));
        }
        texts
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Mattermost::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}

fn push_fields<'a>(fields: &'a [MattermostField], at: &str, out: &mut Vec<(String, &'a str)>) {
    for (j, fl) in fields.iter().enumerate() {
        out.push((format!("{at}[{j}].title"), fl.title.as_str()));
        out.push((format!("{at}[{j}].value"), fl.value.as_str()));
    }
}
