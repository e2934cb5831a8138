//! `telegram_configs`: a bot token (inline, in a file, or from `global:`),
//! the chat (and forum topic) to post to, and the message template.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::commoncfg::{check_http_url, invalid, yes, FieldError, HttpClientConfig, Secret};
use crate::notify::registry::{BuildCtx, BuildError, IntegrationConfig};
use crate::notify::{GlobalConfig, Notifier};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The Bot API server; `global.telegram_api_url` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<String>,
    /// 0 is "unset", as in Go, where the key is an int64.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chat_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id_file: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub message_thread_id: i64,
    #[serde(default = "d_message")]
    pub message: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_notifications: bool,
    /// `HTML` unless set; an explicit empty string sends no parse mode.
    #[serde(default = "d_parse_mode")]
    pub parse_mode: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
fn d_message() -> String {
    "{{ template \"telegram.default.message\" . }}".into()
}
fn d_parse_mode() -> String {
    "HTML".into()
}

/// Go compares the token with `!= ""`: an empty one counts as unset.
fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}
fn set_secret(s: &Option<Secret>) -> bool {
    s.as_ref().is_some_and(|s| !s.expose().is_empty())
}

impl IntegrationConfig for TelegramConfig {
    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    /// `TelegramConfig.UnmarshalYAML`'s checks first (Go makes them while
    /// parsing, before any global default), then the loader's defaults.
    fn apply_global(&mut self, g: &GlobalConfig, f: &str) -> Result<(), FieldError> {
        if set_secret(&self.bot_token) && set(&self.bot_token_file) {
            return Err(invalid(
                f,
                "at most one of bot_token & bot_token_file must be configured",
            ));
        }
        if self.chat_id == 0 && !set(&self.chat_id_file) {
            return Err(invalid(
                f,
                "missing chat_id or chat_id_file on telegram_config",
            ));
        }
        if self.chat_id != 0 && set(&self.chat_id_file) {
            return Err(invalid(
                f,
                "at most one of chat_id & chat_id_file must be configured",
            ));
        }
        if !matches!(
            self.parse_mode.as_str(),
            "" | "Markdown" | "MarkdownV2" | "HTML"
        ) {
            return Err(invalid(
                format!("{f}.parse_mode"),
                "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string",
            ));
        }
        if let Some(u) = &self.api_url {
            check_http_url(u).map_err(|m| invalid(format!("{f}.api_url"), m))?;
        }
        g.inherit_http_config(&mut self.http_config, f)?;
        if self.api_url.is_none() {
            self.api_url = Some(g.telegram_api_url.clone());
        }
        if !set_secret(&self.bot_token) && !set(&self.bot_token_file) {
            if !set_secret(&g.telegram_bot_token) && !set(&g.telegram_bot_token_file) {
                return Err(invalid(
                    f,
                    "missing bot_token or bot_token_file on telegram_config",
                ));
            }
            self.bot_token = g.telegram_bot_token.clone();
            self.bot_token_file = g.telegram_bot_token_file.clone();
        }
        Ok(())
    }

    fn template_texts(&self) -> Vec<(String, &str)> {
        vec![("message".into(), self.message.as_str())]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Result<Arc<dyn Notifier>, BuildError> {
        Ok(Arc::new(super::Telegram::new(
            self,
            ctx.templates.clone(),
            ctx.external_url,
        )?))
    }
}
