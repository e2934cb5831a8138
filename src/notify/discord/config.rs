//! `discord_configs`: a Discord webhook URL (inline or in a file) and the
//! templates of the message's content and its one embed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The URL is the credential: `<secret>` in the status page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    /// Go gives `content` no default (`discord.default.content` exists but
    /// is not used unless a config names it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(default = "d_title")]
    pub title: String,
    #[serde(default = "d_message")]
    pub message: String,
    /// Sent as written: Go does not template it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
}

fn d_title() -> String {
    "{{ template \"discord.default.title\" . }}".into()
}
fn d_message() -> String {
    "{{ template \"discord.default.message\" . }}".into()
}

impl IntegrationConfig for DiscordConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `DiscordConfig.UnmarshalYAML`'s checks, then the global
    /// `http_config`.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if let Some(u) = &self.webhook_url {
            check_http_url(u.expose()).map_err(|m| invalid(format!("{f}.webhook_url"), m))?;
        }
        let file = self
            .webhook_url_file
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        match (&self.webhook_url, file) {
            (None, false) => {
                return Err(invalid(
                    f,
                    "one of webhook_url or webhook_url_file must be configured",
                ))
            }
            (Some(_), true) => {
                return Err(invalid(
                    f,
                    "at most one of webhook_url & webhook_url_file must be configured",
                ))
            }
            _ => {}
        }
        g.inherit_http_config(&mut self.http_config, f)
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        vec![
            ("content".into(), self.content.as_str()),
            ("title".into(), self.title.as_str()),
            ("message".into(), self.message.as_str()),
        ]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Discord::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
